-- Web workers cache a validated session or API token for about a second
-- (appliance.auth.PrincipalCache) and LISTEN on channel tandem_auth to forget the
-- cached sign-ins of a schema as soon as one may have ended or changed: a session
-- revoked, shortened or deleted; a token revoked, shortened or deleted; a user
-- disabled, deleted, or given another role, e-mail, name or password. The payload is
-- the schema's name. Routine writes (last_seen_at / last_used_at moving forward, a
-- sign-in resetting failed_logins) notify nothing. Same function in the control
-- schema (sql/control/0003_auth_notify.sql).

CREATE FUNCTION auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tandem_auth', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_auth_notify AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.disabled_at IS DISTINCT FROM NEW.disabled_at
          OR OLD.password_hash IS DISTINCT FROM NEW.password_hash)
    EXECUTE FUNCTION auth_notify();
CREATE TRIGGER users_auth_notify_delete AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION auth_notify();

CREATE TRIGGER sessions_auth_notify AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR NEW.expires_at < OLD.expires_at OR NEW.last_seen_at < OLD.last_seen_at)
    EXECUTE FUNCTION auth_notify();
CREATE TRIGGER sessions_auth_notify_delete AFTER DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION auth_notify();

CREATE TRIGGER api_tokens_auth_notify AFTER UPDATE ON api_tokens FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash OR NEW.expires_at < OLD.expires_at)
    EXECUTE FUNCTION auth_notify();
CREATE TRIGGER api_tokens_auth_notify_delete AFTER DELETE ON api_tokens FOR EACH ROW
    EXECUTE FUNCTION auth_notify();
