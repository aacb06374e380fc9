-- State that spans doors, shared by every gateway worker (issue #14, point 2).
--
-- zone_occupancy: one row per zone with a capacity or a gathering threshold: how many are
-- inside, as all workers together admitted them. An entry into a zone with a capacity is
-- one atomic conditional UPDATE of its row (gateway/store/zone_counts.py), so two workers
-- can never both take the last place. `crossing` counts the times the zone reached its
-- capacity from below: a zone_full alert names its crossing, and only one open alert per
-- zone and crossing can exist (the index at the end).
--
-- zone_presence: who holds a place, so that a person entering twice takes one place and
-- leaving without a place frees none (as the in-memory count does). `claimed_at` (the
-- database's clock) lets the reconciliation keep places too young to be in the access log
-- yet and drop older ones the log does not confirm (a worker died between claiming a
-- place and logging the entry). An exit marks its row `left_at` rather than deleting it,
-- so that a reconciliation before the exit reaches the log does not count the person again.
CREATE TABLE zone_occupancy (
    zone_id       text PRIMARY KEY,
    inside        integer NOT NULL DEFAULT 0 CHECK (inside >= 0),
    crossing      integer NOT NULL DEFAULT 0,
    took          boolean NOT NULL DEFAULT false,  -- whether the last claim took a place
    reconciled_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE zone_presence (
    zone_id    text NOT NULL,
    person_id  text NOT NULL,
    entered_at timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    left_at    timestamptz,  -- set by an exit: kept a while, so the log cannot revive it
    PRIMARY KEY (zone_id, person_id)
);

-- Alerts several workers could raise for one thing are stored once while open: one
-- device_offline per device, one gathering per zone, one zone_full per zone and crossing.
-- Older duplicates left open before this migration are resolved first.
WITH ranked AS (
    SELECT id, row_number() OVER (
               PARTITION BY kind,
                            CASE WHEN kind = 'device_offline' THEN device ELSE zone END,
                            coalesce(detail->>'crossing', '')
               ORDER BY ts DESC, id) AS n
    FROM alerts
    WHERE status <> 'resolved' AND kind IN ('device_offline', 'gathering', 'zone_full')
),
closed AS (
    UPDATE alerts a SET status = 'resolved', updated_at = now()
    FROM ranked r WHERE r.id = a.id AND r.n > 1
    RETURNING a.id
)
INSERT INTO alert_history (alert_id, status, operator, note)
SELECT id, 'resolved', 'migration', 'duplicate of a newer open alert' FROM closed;

CREATE UNIQUE INDEX alerts_open_once ON alerts (
    kind,
    (CASE WHEN kind = 'device_offline' THEN device ELSE zone END),
    (coalesce(detail->>'crossing', ''))
) WHERE status <> 'resolved' AND kind IN ('device_offline', 'gathering', 'zone_full');

-- Claims in one round trip (gateway/store/zone_counts.py `claim_many`): each in turn, as
-- the single-claim statement does it. Each UPDATE locks the zone's row and sees its
-- latest values; the caller orders the claims by zone so that two workers' batches lock
-- rows in the same order (no deadlock). A person holding a place keeps it (held); a row
-- missing (a zone not counted yet) gives NULLs.
CREATE FUNCTION campusgate_claim_places(
    zones text[], persons text[], limits integer[], caps integer[], entered timestamptz[]
) RETURNS TABLE (k integer, c_inside integer, c_crossing integer, c_took boolean,
                 c_held boolean)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    h boolean;
    r record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(zones, 1), 0) LOOP
        h := EXISTS (SELECT 1 FROM zone_presence p
                     WHERE p.zone_id = zones[i] AND p.person_id = persons[i]
                       AND p.left_at IS NULL);
        UPDATE zone_occupancy z
        SET took = NOT h AND (limits[i] IS NULL OR z.inside < limits[i]),
            inside = z.inside + (NOT h AND (limits[i] IS NULL OR z.inside < limits[i]))::int,
            crossing = z.crossing + coalesce((NOT h AND (limits[i] IS NULL
                                                         OR z.inside < limits[i])
                                              AND z.inside + 1 = caps[i])::int, 0)
        WHERE z.zone_id = zones[i]
        RETURNING z.inside, z.crossing, z.took INTO r;
        IF NOT FOUND THEN
            k := i; c_inside := NULL; c_crossing := NULL; c_took := NULL; c_held := h;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF r.took THEN
            INSERT INTO zone_presence (zone_id, person_id, entered_at)
            VALUES (zones[i], persons[i], entered[i])
            ON CONFLICT (zone_id, person_id) DO UPDATE
                SET entered_at = EXCLUDED.entered_at, claimed_at = now(), left_at = NULL;
        END IF;
        k := i; c_inside := r.inside; c_crossing := r.crossing; c_took := r.took; c_held := h;
        RETURN NEXT;
    END LOOP;
END
$$;
