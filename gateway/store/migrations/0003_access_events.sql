-- The access log, partitioned by month of received_at (UTC) for retention.

CREATE TABLE access_events (
    device_id   text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    device_ts   timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    door_id     text,
    zone_id     text,
    person_id   text,
    card_uid    text,
    direction   text,
    celsius     double precision,
    decision    text,
    reason      text,
    decided_at  timestamptz,
    latency_us  bigint,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (received_at);

CREATE TABLE access_events_default PARTITION OF access_events DEFAULT;

CREATE INDEX access_events_device_event ON access_events (device_id, event_id);
CREATE INDEX access_events_received ON access_events USING brin (received_at);
CREATE INDEX access_events_person ON access_events (person_id, received_at);
CREATE INDEX access_events_zone ON access_events (zone_id, received_at);

-- Create the month partition holding `ts` (UTC months) unless it exists; rows already
-- in the default partition for that month move into it. Returns the partition name.
CREATE FUNCTION campusgate_ensure_access_partition(ts timestamptz) RETURNS text
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
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE access_events INCLUDING DEFAULTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM access_events_default '
                   'WHERE received_at >= $1 AND received_at < $2 RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
    EXECUTE format('ALTER TABLE access_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN part;
END $$;
