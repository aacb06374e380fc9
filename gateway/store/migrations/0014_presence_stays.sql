-- Contact tracing (issue #5, item 3): stays precomputed from the access log, so that
-- finding who overlapped a seed's presence is an index range scan instead of rebuilding
-- every other person's stay from raw passages (gateway/store/tracing_stays.py).
--
-- One row per admitted `in` card passage with a person and a zone (every zone: whether a
-- zone is a gate or has exits is decided per trace). A stay starting at s ends at the
-- person's next passage in its zone when that is an `out` within the max stay, else at
-- their next passage anywhere, at most the max stay later: so it is final once the log
-- holds every passage up to s + max stay. The job materializes stays up to a watermark
-- well behind that; the tracer reads stays before the watermark from here and the rest
-- from the log. The watermark holds the max stay the rows were built with: a trace
-- with another max stay ignores the table, and the job rebuilds it.

CREATE TABLE presence_stays (
    zone_id   text NOT NULL,
    s         timestamptz NOT NULL,
    e         timestamptz NOT NULL,
    person_id text NOT NULL
);

-- Stays last at most the max stay, so those overlapping [a, b) start in (a - max, b).
CREATE INDEX presence_stays_zone ON presence_stays (zone_id, s) INCLUDE (e, person_id);

CREATE TABLE presence_stays_watermark (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    upto       timestamptz NOT NULL,  -- every stay that started before this is in the table
    max_stay_s double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Retention deletes stays by start time, like the log rows they came from.
CREATE INDEX presence_stays_start ON presence_stays USING brin (s);
