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
