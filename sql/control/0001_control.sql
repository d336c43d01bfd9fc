-- The control schema: tenants, nodes, worker state, cluster admins, audit log.
-- Runs with search_path = tandem; the migrator records it in tandem.schema_migrations.

CREATE TABLE tenants (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug          text NOT NULL UNIQUE,
    schema_name   text NOT NULL UNIQUE,
    role_name     text NOT NULL UNIQUE,
    display_name  text NOT NULL DEFAULT '',
    state         text NOT NULL DEFAULT 'active'
                  CHECK (state IN ('active', 'disabled', 'deleting')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Each node (a machine running `tandem run` against this database) reports in.
CREATE TABLE nodes (
    name          text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    version       text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- What each node's supervisor knows of each tenant worker it runs.
CREATE TABLE tenant_workers (
    tenant_id      bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    node           text NOT NULL,
    state          text NOT NULL
                   CHECK (state IN ('starting', 'running', 'standby', 'backoff', 'failed', 'stopping', 'stopped')),
    pid            integer,
    restarts       integer NOT NULL DEFAULT 0,
    boot_failures  integer NOT NULL DEFAULT 0,
    last_exit      text,
    reason         text,
    started_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, node)
);

CREATE TABLE cluster_admins (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX cluster_admins_email ON cluster_admins (lower(email));

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    target       text NOT NULL DEFAULT '',
    client_addr  inet,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
