-- A commit-ordered feed of alert changes for the live stream.
--
-- alert_history ids are taken when a row is inserted, not when its transaction commits,
-- so two transactions can commit out of id order and a console that resumed after the
-- higher id would never see the lower one. Each history row therefore also gets a
-- feed sequence number, assigned at commit time by a deferred trigger under one
-- transaction-level advisory lock: the lock is held until the commit is visible, so a
-- higher sequence number is only ever taken after every lower one is committed. The
-- sequence number is the stream's cursor (`?since=`), and the NOTIFY payload.

CREATE TABLE alert_feed (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    history_id   bigint NOT NULL UNIQUE REFERENCES alert_history (id) ON DELETE CASCADE,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The history written so far, in id order (it has all committed by now).
INSERT INTO alert_feed (history_id, committed_at) SELECT id, ts FROM alert_history ORDER BY id;

DROP TRIGGER alert_history_notify ON alert_history;
DROP FUNCTION campusgate_notify_alert_change();

CREATE FUNCTION campusgate_feed_alert_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1128743238);  -- 'CGAF': alert feed commit order
    INSERT INTO alert_feed (history_id) VALUES (NEW.id) RETURNING seq INTO next_seq;
    PERFORM pg_notify('campusgate_alert_changes', next_seq::text);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER alert_history_feed AFTER INSERT ON alert_history
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION campusgate_feed_alert_change();

CREATE TRIGGER alert_feed_append_only BEFORE UPDATE OR DELETE ON alert_feed
    FOR EACH ROW EXECUTE FUNCTION campusgate_append_only();
