-- Accounts for the cluster console, the same tables every tenant schema gets in
-- sql/tenant/0002_accounts.sql, so one code path (unqualified table names under the
-- request's search_path) serves both realms. Existing cluster admins are kept: the
-- table is renamed, not copied.

ALTER TABLE cluster_admins RENAME TO users;
ALTER INDEX cluster_admins_email RENAME TO users_email;
ALTER INDEX cluster_admins_pkey RENAME TO users_pkey;
ALTER SEQUENCE cluster_admins_id_seq RENAME TO users_id_seq;
ALTER TABLE users
    -- Everyone in the console is an admin; the column exists so both realms' rows look alike.
    ADD COLUMN role                 text NOT NULL DEFAULT 'admin' CHECK (role = 'admin'),
    ADD COLUMN display_name         text NOT NULL DEFAULT '',
    -- Failed sign-ins in a row and the end of the lock-out they caused (for display;
    -- appliance.auth decides from login_attempts).
    ADD COLUMN failed_logins        integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until         timestamptz,
    ADD COLUMN password_changed_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_login_at        timestamptz;

-- Server-side sessions. The cookie holds a random token; only its sha256 is stored,
-- so a copy of this table signs nobody in.
CREATE TABLE sessions (
    id            text PRIMARY KEY,              -- sha256 hex of the cookie's token
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),   -- idle expiry
    expires_at    timestamptz NOT NULL,                 -- absolute expiry
    revoked_at    timestamptz,
    client_addr   inet,
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Per-user API tokens: shown once, stored as sha256, the prefix kept for lists.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Every sign-in attempt, kept for a while: the per-address throttle counts them
-- (shared by all web workers), and the per-account lock-out counts failures by
-- e-mail address, whether or not such an account exists, so the answers never
-- tell which addresses have accounts. `unlock` rows are an admin lifting a lock.
CREATE TABLE login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    client_addr  inet,
    email        text NOT NULL,                   -- lower-cased as typed
    outcome      text NOT NULL CHECK (outcome IN ('pending', 'success', 'failure', 'locked', 'unlock'))
);
CREATE INDEX login_attempts_address ON login_attempts (client_addr, at);
CREATE INDEX login_attempts_email ON login_attempts (email, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

CREATE INDEX audit_log_action ON audit_log (action, id);

-- Web workers cache the tenant directory and LISTEN on this channel to forget an
-- entry as soon as a tenant is created, changed or deleted.
CREATE FUNCTION tenants_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tandem_tenants', coalesce(NEW.slug, OLD.slug));
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_notify();
