-- How far the poll of a run in progress has got, for the panel's progress bar and its estimate
-- of the time left: the side being polled, since when, how many of its changed items are done,
-- how many the app counted when the poll began (NULL when the app does not say), and the rate
-- of about the last two minutes (appliance.sync.progress).
-- appliance.sync.jobs writes them with the run's counts every few seconds; all NULL while the
-- run is not polling (a webhook run, the work after the polls) and once it ended.
ALTER TABLE runs
    ADD COLUMN poll_side text CHECK (poll_side IN ('a', 'b')),
    ADD COLUMN poll_started_at timestamptz,
    ADD COLUMN poll_items_done integer,
    ADD COLUMN poll_items_total integer,
    ADD COLUMN poll_items_per_second double precision;
