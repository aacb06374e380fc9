"""Contact tracing over the access log: stays from passages, and who overlapped them.

A stay opens with an admitted `in` passage in a zone and closes at the person's next
passage (their `out` when they swiped one), at most `max_stay_s` later. Zones of kind
`gate` are passed through, not shared, and are left out. A zone where no admitted `out`
passage was logged in the window (one-way doors) is traced by entry proximity instead:
entries at most `entry_gap_s` apart.

The seeds' presence in each zone is merged into islands first, so tracing from hundreds
of seeds (second generation) costs about what one seed does per zone visited.

Other people's stays that started before the stays watermark are read precomputed from
`presence_stays` (gateway/store/tracing_stays.py: the same rule, stored by a campus
job), an index range scan per island; only the stays after it are rebuilt from the log
here. Without a usable watermark (none yet, or built with another max stay) everything
comes from the log. The trace runs in one snapshot (repeatable read when it owns the
transaction), so the watermark and the stays it reads agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.tracing import MAX_VIA, Contact, Method, TraceWindow
from gateway.store.tracing_stays import usable_upto

_TEMP_TABLES = (
    "_tr_pass", "_tr_zone", "_tr_sstay", "_tr_sentry", "_tr_island", "_tr_eisland",
    "_tr_range", "_tr_other", "_tr_enc",
)  # fmt: skip
# No stored stays are used: every stay comes from the log.
_NEVER = datetime.min.replace(tzinfo=UTC)
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


# The seeds' stays in two-way zones, from their first encounter (`since`) on; kept per
# seed, so that a contact can say through whom (`via`) it was found.
_SEED_STAYS = """
CREATE TEMP TABLE _tr_sstay ON COMMIT DROP AS
SELECT * FROM (
SELECT p.person_id, p.zone_id,
       greatest(p.t, p.since, $1::timestamptz) AS s,
       least(coalesce(p.next_t, p.t + make_interval(secs => $3)),
             p.t + make_interval(secs => $3), $2::timestamptz) AS e
FROM _tr_pass p JOIN _tr_zone z ON z.zone_id = p.zone_id AND z.two_way
WHERE p.direction = 'in' AND p.t < $2
) stays WHERE e > s
"""

# Around each seed entry in a one-way zone, the span within which another entry counts.
_SEED_ENTRIES = """
CREATE TEMP TABLE _tr_sentry ON COMMIT DROP AS
SELECT p.person_id, p.zone_id, greatest(p.t - make_interval(secs => $3), $1::timestamptz) AS s,
       least(p.t + make_interval(secs => $3), $2::timestamptz) AS e
FROM _tr_pass p JOIN _tr_zone z ON z.zone_id = p.zone_id AND NOT z.two_way
WHERE p.direction = 'in' AND p.t >= greatest(p.since, $1::timestamptz) AND p.t < $2
"""

# Where to read others' passages: from a max stay before every island (a stay that
# began earlier ended before the island) to its end, merged; but not before the stays
# watermark ($2): earlier stays are stored (_STORED). A stay that began in a range may
# close after it: its closing passage is looked up by person (_OVERLAPS).
_RANGES = """
SELECT zone_id, greatest(s - make_interval(secs => $1), $2::timestamptz) AS s, e
FROM _tr_island WHERE e > $2::timestamptz
"""

_OTHERS = f"""
CREATE TEMP TABLE _tr_other ON COMMIT DROP AS
SELECT e.person_id, e.zone_id, e.direction, e.received_at AS t, r.e AS range_e,
       lead(e.received_at) OVER w AS next_t, lead(e.direction) OVER w AS next_dir
FROM _tr_range r
JOIN access_events e ON e.zone_id = r.zone_id AND e.received_at >= r.s AND e.received_at < r.e
WHERE e.{_ADMITTED.replace(" AND ", " AND e.")} AND e.person_id IS NOT NULL
WINDOW w AS (PARTITION BY e.person_id, e.zone_id ORDER BY e.received_at)
"""

# Others' stays overlapping a seed island. A stay ends at the person's next passage in
# its zone when that is an out within a max stay; otherwise at their next passage
# anywhere (or after a max stay). Both lookups by person run only where the passages
# read (up to the end of the stay's range) do not tell. MATERIALIZED: each stay's end
# is worked out once, not again for every island of its zone in the join.
_OVERLAPS = f"""
WITH cand AS MATERIALIZED (
    SELECT o.person_id, o.zone_id, o.t,
           CASE WHEN o.next_t < o.range_e
                THEN CASE WHEN o.next_dir = 'out' THEN o.next_t END
                ELSE (SELECT CASE WHEN a.direction = 'out' THEN a.received_at END
                      FROM access_events a
                      WHERE a.person_id = o.person_id AND a.{_ADMITTED.replace(" AND ", " AND a.")}
                        AND a.zone_id = o.zone_id AND a.received_at >= o.range_e
                        AND a.received_at <= o.t + make_interval(secs => $2)
                      ORDER BY a.received_at LIMIT 1)
           END AS out_t
    FROM _tr_other o
    WHERE o.direction = 'in' AND NOT (o.person_id = ANY($1::text[]))
      AND EXISTS (SELECT 1 FROM _tr_island i
                  WHERE i.zone_id = o.zone_id AND i.s < o.t + make_interval(secs => $2)
                    AND i.e > o.t)
), stays AS MATERIALIZED (
    SELECT c.person_id, c.zone_id, c.t AS s,
           CASE WHEN c.out_t <= c.t + make_interval(secs => $2)
                THEN c.out_t
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

# Stored stays that started before the watermark ($3) and overlap a seed island: they
# last at most a max stay, so they start within a max stay before the island.
_STORED = """
SELECT st.person_id, st.zone_id, greatest(st.s, i.s) AS os, least(st.e, i.e) AS oe
FROM _tr_island i
JOIN presence_stays st
  ON st.zone_id = i.zone_id AND st.s > i.s - make_interval(secs => $2) AND st.s < i.e
 AND st.s < $3::timestamptz AND st.e > i.s
WHERE NOT (st.person_id = ANY($1::text[]))
"""

_PROXIMITY = f"""
SELECT e.person_id, e.zone_id, e.received_at AS os, e.received_at AS oe
FROM _tr_eisland i
JOIN access_events e ON e.zone_id = i.zone_id AND e.received_at >= i.s AND e.received_at <= i.e
WHERE e.{_ADMITTED.replace(" AND ", " AND e.")} AND e.direction = 'in'
  AND e.person_id IS NOT NULL AND NOT (e.person_id = ANY($1::text[]))
"""

# Every encounter with a seed island: (person, zone, os, oe, overlap seconds, proximity).
_ENCOUNTERS = f"""
CREATE TEMP TABLE _tr_enc ON COMMIT DROP AS
SELECT person_id, zone_id, os, oe, extract(epoch FROM oe - os)::float8 AS secs, false AS prox
FROM ({_OVERLAPS}) ov
UNION ALL
SELECT person_id, zone_id, os, oe, extract(epoch FROM oe - os)::float8, false
FROM ({_STORED}) st
UNION ALL
SELECT person_id, zone_id, os, oe, 0, true FROM ({_PROXIMITY}) px
"""

_CONTACTS = """
WITH per AS (
    SELECT person_id,
           coalesce(sum(secs) FILTER (WHERE NOT prox), 0)::float8 AS overlap_s,
           count(*) FILTER (WHERE NOT prox AND secs > 0)::int AS overlaps,
           count(*) FILTER (WHERE prox)::int AS prox,
           min(os) AS first_at, max(oe) AS last_at,
           array_agg(DISTINCT zone_id ORDER BY zone_id) AS zones
    FROM _tr_enc GROUP BY person_id
)
SELECT per.*, p.name FROM per LEFT JOIN people p ON p.id = per.person_id
WHERE per.overlap_s >= $1 OR per.prox > 0
"""

# Through whom each contact was found: the seeds whose own stays (or entry spans) their
# encounters met, weighted like exposure (overlap seconds; `entry_gap_s` an entry).
_VIA = """
WITH met AS (
    SELECT en.person_id, ss.person_id AS seed,
           extract(epoch FROM least(ss.e, en.oe) - greatest(ss.s, en.os))::float8 AS secs
    FROM _tr_enc en JOIN _tr_sstay ss
      ON ss.zone_id = en.zone_id AND ss.s < en.oe AND ss.e > en.os
    WHERE NOT en.prox AND en.person_id = ANY($1::text[])
    UNION ALL
    SELECT en.person_id, se.person_id, $2::float8
    FROM _tr_enc en JOIN _tr_sentry se
      ON se.zone_id = en.zone_id AND se.s <= en.os AND se.e >= en.os
    WHERE en.prox AND en.person_id = ANY($1::text[])
), ranked AS (
    SELECT person_id, seed,
           row_number() OVER (PARTITION BY person_id ORDER BY sum(secs) DESC, seed) AS n
    FROM met GROUP BY person_id, seed
)
SELECT person_id, array_agg(seed ORDER BY n) AS via FROM ranked WHERE n <= $3 GROUP BY person_id
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
    by exposure, then encounters. In the second generation each contact names the seeds
    it was found through (`via`).
    """
    if not seeds:
        return []
    people = [s[0] for s in seeds]
    excluded = sorted({*people, *exclude})
    m = window.max_stay_s
    # One snapshot for the watermark, the stored stays and the log (see the docstring).
    isolation = None if conn.is_in_transaction() else "repeatable_read"
    async with conn.transaction(isolation=isolation):
        # JIT compiling these statements costs more than it saves (tens of ms each).
        await conn.execute("SET LOCAL jit = off")
        # Plan each statement for its own parameters: after five runs PostgreSQL may
        # switch a prepared statement to a generic plan, which for these (ranges of
        # unknown width over temp tables) was measured 4-10 times slower.
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        stored_upto = await usable_upto(conn, m)
        for table in _TEMP_TABLES:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(
            _SEED_PASSAGES, people, [s[1] for s in seeds], window.start, window.end, m
        )
        await conn.execute(_ZONES, window.start, window.end, m)
        await conn.execute(_SEED_STAYS, window.start, window.end, m)
        await conn.execute(_SEED_ENTRIES, window.start, window.end, window.entry_gap_s)
        await conn.execute(_islands("SELECT zone_id, s, e FROM _tr_sstay", "_tr_island"))
        await conn.execute(_islands("SELECT zone_id, s, e FROM _tr_sentry", "_tr_eisland"))
        await conn.execute("ANALYZE _tr_island")
        await conn.execute(_islands(_RANGES, "_tr_range"), m, stored_upto or _NEVER)
        await conn.execute(_OTHERS)
        await conn.execute("ANALYZE _tr_other")
        await conn.execute(_ENCOUNTERS, excluded, m, stored_upto or _NEVER)
        await conn.execute("ANALYZE _tr_enc")
        rows = await conn.fetch(_CONTACTS, window.min_overlap_s)
        via: dict[str, tuple[str, ...]] = {}
        if generation > 1 and rows:
            await conn.execute("ANALYZE _tr_sstay, _tr_sentry")
            found = [r["person_id"] for r in rows]
            via_rows = await conn.fetch(_VIA, found, window.entry_gap_s, MAX_VIA)
            via = {r["person_id"]: tuple(r["via"]) for r in via_rows}
    contacts = [_contact(r, window, generation, via.get(r["person_id"], ())) for r in rows]
    contacts.sort(key=lambda c: (-c.exposure_s, -c.encounters, c.person_id))
    return contacts


def _contact(
    row: asyncpg.Record, window: TraceWindow, generation: int, via: tuple[str, ...]
) -> Contact:
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
        via=via,
    )


async def person_name(conn: asyncpg.Connection, person_id: str) -> tuple[bool, str | None]:
    """(exists, name) of a person."""
    row = await conn.fetchrow("SELECT name FROM people WHERE id = $1", person_id)
    return (row is not None, row["name"] if row is not None else None)


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
