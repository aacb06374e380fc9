-- Operators can be cut off (issue #12, point 6): disabled accounts, API tokens that
-- expire or are revoked, idle sessions, and login failures counted in the database so
-- a lock-out holds across API processes and restarts.

ALTER TABLE operators ADD COLUMN disabled_at timestamptz;
-- A revoked token leaves no hash behind: no bearer token matches a NULL.
ALTER TABLE operators ALTER COLUMN token_hash DROP NOT NULL;
ALTER TABLE operators ADD COLUMN token_expires_at timestamptz;

ALTER TABLE operator_sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();

-- One row per failed login: the name tried (known or not) and the client address.
CREATE TABLE login_failures (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name    text NOT NULL,
    address text NOT NULL,
    ts      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_name ON login_failures (name, ts);
CREATE INDEX login_failures_address ON login_failures (address, ts);
CREATE INDEX login_failures_ts ON login_failures (ts);

-- Whatever changes an operator or ends one of its sessions is announced, so that the API
-- processes close that operator's open live streams at once (api/stream.py).
CREATE FUNCTION campusgate_notify_operator_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campusgate_operator_changes', OLD.id);
    RETURN NULL;
END $$;

CREATE FUNCTION campusgate_notify_session_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campusgate_operator_changes', OLD.operator_id);
    RETURN NULL;
END $$;

CREATE TRIGGER operators_notify_change AFTER UPDATE OR DELETE ON operators
    FOR EACH ROW EXECUTE FUNCTION campusgate_notify_operator_row();
CREATE TRIGGER operator_sessions_notify_end AFTER DELETE ON operator_sessions
    FOR EACH ROW EXECUTE FUNCTION campusgate_notify_session_row();
