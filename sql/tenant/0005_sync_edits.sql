-- Comment and attachment pairs outlive a delete: a pair whose comment (or file) was deleted on
-- one side is kept as 'deleted', so the surviving one is never copied across again, whatever
-- the delete policy did with it.
ALTER TABLE comment_links
    ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
    ADD COLUMN synced_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE attachment_links
    ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted'));
