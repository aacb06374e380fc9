-- Alerts and their lifecycle, operators, and the audit log of operator changes.

CREATE TABLE alerts (
    id         text PRIMARY KEY,
    kind       text NOT NULL,
    severity   text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    ts         timestamptz NOT NULL,
    door       text,
    zone       text,
    device     text,
    person     text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_ts ON alerts (ts);
CREATE INDEX alerts_unresolved ON alerts (kind, device) WHERE status <> 'resolved';

CREATE TABLE alert_history (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id text NOT NULL,
    status   text NOT NULL,
    operator text,
    note     text NOT NULL DEFAULT '',
    ts       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, ts);
CREATE TRIGGER alert_history_append_only BEFORE UPDATE OR DELETE ON alert_history
    FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();
CREATE TRIGGER alert_history_no_truncate BEFORE TRUNCATE ON alert_history
    FOR EACH STATEMENT EXECUTE FUNCTION campusgate_append_only();

CREATE TABLE operators (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('admin', 'guard', 'health_officer', 'liaison')),
    token_hash    text NOT NULL UNIQUE,
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator  text NOT NULL,
    action    text NOT NULL,
    entity    text NOT NULL,
    entity_id text,
    before    jsonb,
    after     jsonb,
    ts        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, ts);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION campusgate_append_only();
