-- The operator API and guard console: an optional org unit per operator (liaisons see
-- their unit and below), console sessions, and a notification for every alert change.

ALTER TABLE operators ADD COLUMN org_unit_id text REFERENCES org_units (id) ON DELETE SET NULL;

-- Console sessions: only the sha256 of the cookie is stored, beside its CSRF token.
CREATE TABLE operator_sessions (
    token_hash  text PRIMARY KEY,
    operator_id text NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- Every lifecycle step (the first one is 'open' when the alert is raised) is a row of
-- alert_history: its id is the stream cursor a reconnecting console resumes from.
CREATE FUNCTION campusgate_notify_alert_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('campusgate_alert_changes', NEW.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER alert_history_notify AFTER INSERT ON alert_history
    FOR EACH ROW EXECUTE FUNCTION campusgate_notify_alert_change();
