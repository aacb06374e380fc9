"""Contact tracing over the access log: stays from passages, and who overlapped them.

A stay opens with an admitted `in` passage in a zone and closes at the person's next
passage (their `out` when they swiped one), at most `max_stay_s` later. Zones of kind
`gate` are passed through, not shared, and are left out. A zone where no admitted `out`
passage was logged in the window (one-way doors) is traced by entry proximity instead:
entries at most `entry_gap_s` apart.

The seeds' presence in each zone is merged into islands first, so tracing from hundreds
of seeds (second generation) costs about what one seed does per zone visited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.tracing import Contact, Method, TraceWindow

_ADMITTED = "type = 'card' AND decision = 'admit'"  # must match the partial indexes of 0010

_SEED_PASSAGES = f"""
CREATE TEMP TABLE _tr_pass ON COMMIT DROP AS
SELECT e.person_id, e.zone_id, e.direction, e.received_at AS t, s.since,
       lead(e.received_at) OVER (PARTITION BY e.person_id ORDER BY e.received_at) AS next_t
FROM unnest($1::text[], $2::timestamptz[]) AS s(person_id, since)
JOIN access_events e ON e.person_id = s.person_id
WHERE e.{_ADMITTED.replace(" AND ", " AND e.")}
  AND e.received_at >= $3::timestamptz - make_interval(secs => $5) AND e.received_at < $4
"""

# Zones the seeds entered (no gates), and whether any exit was logged there.
_ZONES = f"""
CREATE TEMP TABLE _tr_zone ON COMMIT DROP AS
SELECT z.zone_id,
       EXISTS (SELECT 1 FROM access_events e
               WHERE e.zone_id = z.zone_id AND e.{_ADMITTED.replace(" AND ", " AND e.")}
                 AND e.direction = 'out'
                 AND e.received_at >= $1::timestamptz - make_interval(secs => $3)
                 AND e.received_at < $2) AS two_way
FROM (SELECT DISTINCT zone_id FROM _tr_pass WHERE zone_id IS NOT NULL AND direction = 'in') z
WHERE NOT EXISTS (SELECT 1 FROM zones g WHERE g.id = z.zone_id AND g.kind = 'gate')
"""


def _islands(source: str, table: str) -> str:
    """Merge (zone_id, s, e) intervals of `source` into disjoint islands per zone."""
    return f"""
CREATE TEMP TABLE {table} ON COMMIT DROP AS
SELECT zone_id, min(s) AS s, max(e) AS e FROM (
    SELECT zone_id, s, e, count(*) FILTER (WHERE s > prev_e OR prev_e IS NULL)
               OVER (PARTITION BY zone_id ORDER BY s, e) AS grp
    FROM (SELECT zone_id, s, e,
                 max(e) OVER (PARTITION BY zone_id ORDER BY s, e
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
          FROM ({source}) src) ordered
) grouped
GROUP BY zone_id, grp
"""


# The seeds' stays in two-way zones, from their first encounter (`since`) on.
_SEED_STAYS = """
SELECT * FROM (
SELECT p.zone_id,
       greatest(p.t, p.since, $1::timestamptz) AS s,
       least(coalesce(p.next_t, p.t + make_interval(secs => $3)),
             p.t + make_interval(secs => $3), $2::timestamptz) AS e
FROM _tr_pass p JOIN _tr_zone z ON z.zone_id = p.zone_id AND z.two_way
WHERE p.direction = 'in' AND p.t < $2
) stays WHERE e > s
"""

# Around each seed entry in a one-way zone, the span within which another entry counts.
_SEED_ENTRIES = """
SELECT p.zone_id, greatest(p.t - make_interval(secs => $3), $1::timestamptz) AS s,
       least(p.t + make_interval(secs => $3), $2::timestamptz) AS e
FROM _tr_pass p JOIN _tr_zone z ON z.zone_id = p.zone_id AND NOT z.two_way
WHERE p.direction = 'in' AND p.t >= greatest(p.since, $1::timestamptz) AND p.t < $2
"""

# Where to read others' passages: a max stay either side of every island, merged.
_RANGES = """
SELECT zone_id, s - make_interval(secs => $1) AS s, e + make_interval(secs => $1) AS e
FROM _tr_island
"""

_OTHERS = f"""
CREATE TEMP TABLE _tr_other ON COMMIT DROP AS
SELECT e.person_id, e.zone_id, e.direction, e.received_at AS t,
       lead(e.received_at) OVER w AS next_t, lead(e.direction) OVER w AS next_dir
FROM _tr_range r
JOIN access_events e ON e.zone_id = r.zone_id AND e.received_at >= r.s AND e.received_at < r.e
WHERE e.{_ADMITTED.replace(" AND ", " AND e.")} AND e.person_id IS NOT NULL
WINDOW w AS (PARTITION BY e.person_id, e.zone_id ORDER BY e.received_at)
"""

# Others' stays overlapping a seed island; a stay not closed by an out in its zone
# ends at the person's next passage anywhere (looked up only for those).
_OVERLAPS = f"""
WITH cand AS (
    SELECT o.* FROM _tr_other o
    WHERE o.direction = 'in' AND NOT (o.person_id = ANY($1::text[]))
      AND EXISTS (SELECT 1 FROM _tr_island i
                  WHERE i.zone_id = o.zone_id AND i.s < o.t + make_interval(secs => $2)
                    AND i.e > o.t)
), stays AS (
    SELECT c.person_id, c.zone_id, c.t AS s,
           CASE WHEN c.next_dir = 'out' AND c.next_t <= c.t + make_interval(secs => $2)
                THEN c.next_t
                ELSE coalesce(
                    (SELECT a.received_at FROM access_events a
                     WHERE a.person_id = c.person_id AND a.{_ADMITTED.replace(" AND ", " AND a.")}
                       AND a.received_at > c.t
                       AND a.received_at <= c.t + make_interval(secs => $2)
                     ORDER BY a.received_at LIMIT 1),
                    c.t + make_interval(secs => $2))
           END AS e
    FROM cand c
)
SELECT st.person_id, st.zone_id, greatest(st.s, i.s) AS os, least(st.e, i.e) AS oe
FROM stays st JOIN _tr_island i ON i.zone_id = st.zone_id AND i.s < st.e AND i.e > st.s
"""

_PROXIMITY = f"""
SELECT e.person_id, e.zone_id, e.received_at AS os, e.received_at AS oe
FROM _tr_eisland i
JOIN access_events e ON e.zone_id = i.zone_id AND e.received_at >= i.s AND e.received_at <= i.e
WHERE e.{_ADMITTED.replace(" AND ", " AND e.")} AND e.direction = 'in'
  AND e.person_id IS NOT NULL AND NOT (e.person_id = ANY($1::text[]))
"""

_CONTACTS = f"""
WITH enc AS (
    SELECT person_id, zone_id, os, oe, extract(epoch FROM oe - os) AS secs, false AS prox
    FROM ({_OVERLAPS}) ov
    UNION ALL
    SELECT person_id, zone_id, os, oe, 0, true FROM ({_PROXIMITY}) px
), per AS (
    SELECT person_id,
           coalesce(sum(secs) FILTER (WHERE NOT prox), 0)::float8 AS overlap_s,
           count(*) FILTER (WHERE NOT prox AND secs > 0)::int AS overlaps,
           count(*) FILTER (WHERE prox)::int AS prox,
           min(os) AS first_at, max(oe) AS last_at,
           array_agg(DISTINCT zone_id ORDER BY zone_id) AS zones
    FROM enc GROUP BY person_id
)
SELECT per.*, p.name FROM per LEFT JOIN people p ON p.id = per.person_id
WHERE per.overlap_s >= $3 OR per.prox > 0
"""


async def find_contacts(
    conn: asyncpg.Connection,
    seeds: Sequence[tuple[str, datetime]],
    window: TraceWindow,
    *,
    exclude: Sequence[str] = (),
    generation: int = 1,
) -> list[Contact]:
    """Everyone whose presence met a seed's in one zone from that seed's `since` on.

    `seeds` are (person, since) pairs; seeds and `exclude` are never contacts. Ranked
    by exposure, then encounters.
    """
    if not seeds:
        return []
    people = [s[0] for s in seeds]
    excluded = sorted({*people, *exclude})
    async with conn.transaction():
        for table in ("_tr_pass", "_tr_zone", "_tr_island", "_tr_eisland", "_tr_range"):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute("DROP TABLE IF EXISTS _tr_other")
        await conn.execute(
            _SEED_PASSAGES,
            people,
            [s[1] for s in seeds],
            window.start,
            window.end,
            window.max_stay_s,
        )
        await conn.execute(_ZONES, window.start, window.end, window.max_stay_s)
        await conn.execute(
            _islands(_SEED_STAYS, "_tr_island"),
            window.start,
            window.end,
            window.max_stay_s,
        )
        await conn.execute(
            _islands(_SEED_ENTRIES, "_tr_eisland"), window.start, window.end, window.entry_gap_s
        )
        await conn.execute(_islands(_RANGES, "_tr_range"), window.max_stay_s)
        await conn.execute(_OTHERS)
        await conn.execute("ANALYZE _tr_other")
        rows = await conn.fetch(_CONTACTS, excluded, window.max_stay_s, window.min_overlap_s)
    contacts = [_contact(r, window, generation) for r in rows]
    contacts.sort(key=lambda c: (-c.exposure_s, -c.encounters, c.person_id))
    return contacts


def _contact(row: asyncpg.Record, window: TraceWindow, generation: int) -> Contact:
    overlap_s = float(row["overlap_s"])
    prox = int(row["prox"])
    overlapped = overlap_s >= window.min_overlap_s
    if overlapped and prox:
        method = Method.BOTH
    elif overlapped:
        method = Method.OVERLAP
    else:
        method = Method.ENTRY_PROXIMITY
    return Contact(
        person_id=row["person_id"],
        name=row["name"],
        generation=generation,
        method=method,
        zones=tuple(row["zones"]),
        first_encounter=row["first_at"],
        last_encounter=row["last_at"],
        overlap_s=round(overlap_s, 1),
        encounters=int(row["overlaps"]) + prox,
        proximity_encounters=prox,
        exposure_s=round(overlap_s + prox * window.entry_gap_s, 1),
    )


async def person_name(conn: asyncpg.Connection, person_id: str) -> tuple[bool, str | None]:
    """(exists, name) of a person."""
    row = await conn.fetchrow("SELECT name FROM people WHERE id = $1", person_id)
    return (row is not None, row["name"] if row is not None else None)


async def existing_people(conn: asyncpg.Connection, person_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM people WHERE id = ANY($1::text[])", list(person_ids))
    return {r[0] for r in rows}


async def current_statuses(
    conn: asyncpg.Connection, person_ids: Sequence[str]
) -> dict[str, HealthRecord]:
    """The current health status of each of these people who has one."""
    rows = await conn.fetch(
        "SELECT person_id, status, since, until, reason, caretaker_id, set_by "
        "FROM health_status WHERE person_id = ANY($1::text[])",
        list(person_ids),
    )
    return {
        r[0]: HealthRecord(r[0], HealthStatus(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows
    }
