-- Health statuses: the current one per person, and a history that is never rewritten.

CREATE TABLE health_status (
    person_id    text PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    status       text NOT NULL CHECK (status IN ('clear', 'fever_watch', 'home_isolation',
                                                 'close_contact', 'suspected', 'confirmed', 'recovered')),
    since        timestamptz NOT NULL,
    until        timestamptz,
    reason       text NOT NULL DEFAULT '',
    caretaker_id text REFERENCES people (id) ON DELETE SET NULL,
    set_by       text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- No foreign key: the history outlives the person row (retention purges it by age).
CREATE TABLE health_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id    text NOT NULL,
    status       text NOT NULL,
    since        timestamptz NOT NULL,
    until        timestamptz,
    reason       text NOT NULL DEFAULT '',
    caretaker_id text,
    set_by       text,
    changed_by   text NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_history_person ON health_history (person_id, changed_at);

CREATE TRIGGER health_history_append_only BEFORE UPDATE OR DELETE ON health_history
    FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();
CREATE TRIGGER health_history_no_truncate BEFORE TRUNCATE ON health_history
    FOR EACH STATEMENT EXECUTE FUNCTION campusgate_append_only();

SELECT campusgate_watch_roster('health_status');
