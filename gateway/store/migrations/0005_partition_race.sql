-- Two workers starting at once could both miss the new partition in their catalog
-- cache after the advisory lock and both try to create it; the loser now takes the
-- winner's partition instead of failing its start-up with duplicate_table.
CREATE OR REPLACE FUNCTION campusgate_ensure_access_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'access_events_' || to_char(ts AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('campusgate_access_partition'));
    BEGIN
        EXECUTE format('CREATE TABLE %I (LIKE access_events INCLUDING DEFAULTS)', part);
    EXCEPTION WHEN duplicate_table THEN
        RETURN part;
    END;
    EXECUTE format('WITH moved AS (DELETE FROM access_events_default '
                   'WHERE received_at >= $1 AND received_at < $2 RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE access_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN part;
END $$;
