-- alert_feed.history_id keeps no foreign key: with one, TRUNCATE alert_history failed
-- on the reference before its append-only trigger could refuse it, and a retention
-- purge of old history would have to reach into the feed. A feed row whose history
-- row was purged joins to nothing and is skipped by the stream's replay.
ALTER TABLE alert_feed DROP CONSTRAINT alert_feed_history_id_fkey;

CREATE TRIGGER alert_feed_no_truncate BEFORE TRUNCATE ON alert_feed
    FOR EACH STATEMENT EXECUTE FUNCTION campusgate_append_only();
