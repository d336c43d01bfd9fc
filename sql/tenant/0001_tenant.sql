-- A tenant's own schema. Runs as the tenant's role with search_path = t_<slug>,
-- so everything here is owned by that role and reachable by nothing else.

-- The scheduler's jobs (the sync engine adds one per integration): when each
-- last ran, how it ended, when it is due again.
CREATE TABLE scheduled_jobs (
    name          text PRIMARY KEY,
    interval_s    double precision NOT NULL CHECK (interval_s > 0),
    next_run_at   timestamptz NOT NULL DEFAULT now(),
    last_run_at   timestamptz,
    last_status   text,
    last_error    text,
    runs          bigint NOT NULL DEFAULT 0,
    failures      bigint NOT NULL DEFAULT 0
);

-- The worker that holds this tenant's lock says where it runs.
CREATE TABLE worker_status (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    node          text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL
);
