-- Sync: connections to the apps, integrations between two containers, and the engine's own
-- bookkeeping (cursors, links with per-side bases, create intents, comment/attachment pairs,
-- per-item errors, runs, events, conflicts, webhook queue). Runs as the tenant's role.

-- One app account: base URL + credential (encrypted by appliance.secrets, bound to this
-- schema and this row's id). `account` is what the last "test connection" saw.
CREATE TABLE connections (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    kind              text NOT NULL CHECK (kind IN ('jira', 'gitlab')),
    base_url          text NOT NULL,
    options           jsonb NOT NULL DEFAULT '{}',
    credentials       bytea,
    account           jsonb,
    last_test_at      timestamptz,
    last_test_ok      boolean,
    last_test_detail  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Side A <-> side B with everything the engine needs (appliance.sync.spec.IntegrationSpec).
CREATE TABLE integrations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    enabled         boolean NOT NULL DEFAULT false,
    paused          boolean NOT NULL DEFAULT false,
    spec            jsonb NOT NULL,
    webhook_secret  text,
    -- "sync now": the API sets it (without touching updated_at, which restarts the job); the
    -- tenant worker starts a run within a second and clears it.
    sync_requested_at  timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrations_updated ON integrations (updated_at);

-- Where each side's poll resumes: items updated at or after `since` (minus the overlap)
-- are looked at again. Moved forward only, never past the poll's start, and only once the
-- work it covers is committed (each item's work is idempotent, so a crash re-reads at most
-- one page plus the overlap).
CREATE TABLE cursors (
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    side            text NOT NULL CHECK (side IN ('a', 'b')),
    since           timestamptz,
    started_at      timestamptz NOT NULL DEFAULT now(),   -- first poll: start.mode "new" takes items created after it
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, side)
);

-- A synced pair. base_a / base_b: the last synced value of every mapped field as read back
-- from that side (canonical values), so a side's edit is "its value differs from its base".
CREATE TABLE links (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    a_id            text NOT NULL,
    b_id            text NOT NULL,
    a_key           text NOT NULL DEFAULT '',
    b_key           text NOT NULL DEFAULT '',
    a_url           text NOT NULL DEFAULT '',
    b_url           text NOT NULL DEFAULT '',
    marker          text NOT NULL,
    base_a          jsonb NOT NULL DEFAULT '{}',
    base_b          jsonb NOT NULL DEFAULT '{}',
    a_updated_at    timestamptz,
    b_updated_at    timestamptz,
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'conflict', 'error', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    synced_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (integration_id, a_id),
    UNIQUE (integration_id, b_id)
);

-- Idempotent creates: committed with its marker BEFORE the remote create; on recovery the
-- engine looks the marker up on the target side before creating again.
CREATE TABLE intents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    marker          text NOT NULL UNIQUE,
    kind            text NOT NULL DEFAULT 'item' CHECK (kind IN ('item', 'comment')),
    source_side     text NOT NULL CHECK (source_side IN ('a', 'b')),
    source_id       text NOT NULL,
    parent_link_id  bigint REFERENCES links (id) ON DELETE CASCADE,
    target_id       text,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'abandoned')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX intents_pending_source ON intents (integration_id, kind, source_side, source_id)
    WHERE state = 'pending';

-- Comment pairs of a linked item (one row per pair; bodies as last synced, per side).
CREATE TABLE comment_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id     bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    a_id        text NOT NULL,
    b_id        text NOT NULL,
    marker      text NOT NULL,
    base_a      text NOT NULL DEFAULT '',
    base_b      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (link_id, a_id),
    UNIQUE (link_id, b_id)
);

-- Attachment pairs (de-duplicated by content hash).
CREATE TABLE attachment_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id     bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    a_id        text NOT NULL,
    b_id        text NOT NULL,
    sha256      text NOT NULL,
    size        bigint NOT NULL,
    filename    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (link_id, a_id),
    UNIQUE (link_id, b_id)
);

-- An item that failed: retried with backoff from next_attempt_at while the rest flows on.
CREATE TABLE item_errors (
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    side             text NOT NULL CHECK (side IN ('a', 'b')),
    item_id          text NOT NULL,
    item_key         text NOT NULL DEFAULT '',
    attempts         integer NOT NULL DEFAULT 1,
    error            text NOT NULL,
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL,
    PRIMARY KEY (integration_id, side, item_id)
);
CREATE INDEX item_errors_due ON item_errors (integration_id, next_attempt_at);

-- One engine run of one integration.
CREATE TABLE runs (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id           bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    trigger                  text NOT NULL,
    started_at               timestamptz NOT NULL DEFAULT now(),
    finished_at              timestamptz,
    status                   text NOT NULL DEFAULT 'running'
                             CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    items_seen               integer NOT NULL DEFAULT 0,
    items_created            integer NOT NULL DEFAULT 0,
    items_updated            integer NOT NULL DEFAULT 0,
    comments_created         integer NOT NULL DEFAULT 0,
    attachments_created      integer NOT NULL DEFAULT 0,
    conflicts                integer NOT NULL DEFAULT 0,
    errors                   integer NOT NULL DEFAULT 0,
    api_calls                integer NOT NULL DEFAULT 0,
    retries                  integer NOT NULL DEFAULT 0,
    rate_limit_wait_seconds  double precision NOT NULL DEFAULT 0,
    duration_seconds         double precision,
    error                    text
);
CREATE INDEX runs_integration ON runs (integration_id, id DESC);

-- What happened to one item in one run: which fields, which direction, why.
CREATE TABLE events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    run_id          bigint REFERENCES runs (id) ON DELETE SET NULL,
    link_id         bigint REFERENCES links (id) ON DELETE SET NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL,
    direction       text NOT NULL DEFAULT '' CHECK (direction IN ('', 'a_to_b', 'b_to_a')),
    item_key        text NOT NULL DEFAULT '',
    fields          text[] NOT NULL DEFAULT '{}',
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX events_integration ON events (integration_id, id DESC);
CREATE INDEX events_link ON events (link_id, id DESC);

-- A field changed differently on both sides. "open" ones wait for a person (policy hold);
-- resolved ones record how (policy or a person's choice). A person resolves by setting
-- state 'resolved', resolution 'a' | 'b' | 'value' (+ resolved_value, the A-side canonical
-- value) and leaving applied_at NULL: the engine's next look at the link writes the choice
-- to both sides and sets applied_at.
CREATE TABLE conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    link_id         bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    field           text NOT NULL,
    a_value         jsonb,
    b_value         jsonb,
    base_value      jsonb,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    resolution      text,
    resolved_value  jsonb,
    resolved_by     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    applied_at      timestamptz,
    CHECK (resolution IS NULL OR resolution IN ('a', 'b', 'value', 'newest', 'a_wins', 'b_wins'))
);
CREATE UNIQUE INDEX conflicts_open ON conflicts (link_id, field) WHERE state = 'open';
CREATE INDEX conflicts_integration ON conflicts (integration_id, state, id DESC);

-- The webhook fast path: "look at item X of side S now"; the poll stays the safety net.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    side            text NOT NULL CHECK (side IN ('a', 'b')),
    item_id         text NOT NULL,
    kind            text NOT NULL DEFAULT 'updated',
    received_at     timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (integration_id, id) WHERE processed_at IS NULL;
