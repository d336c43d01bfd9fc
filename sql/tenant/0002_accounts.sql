-- A tenant's accounts: the same tables, with the same columns, as the console's
-- (sql/control/0002_accounts.sql), so one code path serves both realms.

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                text NOT NULL,
    password_hash        text NOT NULL,
    role                 text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    display_name         text NOT NULL DEFAULT '',
    disabled_at          timestamptz,
    failed_logins        integer NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
    id            text PRIMARY KEY,              -- sha256 hex of the cookie's token
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    client_addr   inet,
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

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

CREATE TABLE login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    client_addr  inet,
    email        text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('pending', 'success', 'failure', 'locked', 'unlock'))
);
CREATE INDEX login_attempts_address ON login_attempts (client_addr, at);
CREATE INDEX login_attempts_email ON login_attempts (email, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

-- Security events of this tenant (sign-ins, users, roles, tokens), readable by its admins.
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
CREATE INDEX audit_log_action ON audit_log (action, id);
