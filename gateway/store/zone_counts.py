"""Zone head counts shared by every gateway worker (migration 0022).

`claim` takes a place in a zone in one atomic statement: the zone's row is locked by the
UPDATE, so two workers can never both take its last place. `leave` frees a place.
`reconcile` rebuilds a zone's places from the access log (gateway/store/occupancy.py),
keeping places claimed too recently to be logged yet. Only zones with a capacity or a
gathering threshold have rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.store.occupancy import _INSIDE, _args


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found: taken (or `held` already), the count before it, the crossing."""

    taken: bool
    before: int
    crossing: int
    held: bool = False


# $1 zone, $2 person, $3 limit (NULL: none), $4 entered at, $5 capacity (whose reaching
# counts a crossing; NULL: none). The row is updated even when no place is taken, so that
# the values returned are the row's latest (a refused claim names the current crossing,
# not that of an older snapshot). A person who holds a place already keeps it.
_CLAIM = """
WITH held AS (
    SELECT 1 FROM zone_presence WHERE zone_id = $1 AND person_id = $2 AND left_at IS NULL
),
bump AS (
    UPDATE zone_occupancy
    SET took = NOT EXISTS (SELECT 1 FROM held) AND ($3::int IS NULL OR inside < $3::int),
        inside = inside + (NOT EXISTS (SELECT 1 FROM held)
                           AND ($3::int IS NULL OR inside < $3::int))::int,
        crossing = crossing + coalesce((NOT EXISTS (SELECT 1 FROM held)
                                        AND ($3::int IS NULL OR inside < $3::int)
                                        AND inside + 1 = $5::int)::int, 0)
    WHERE zone_id = $1
    RETURNING inside, crossing, took
),
mark AS (
    INSERT INTO zone_presence (zone_id, person_id, entered_at)
    SELECT $1, $2, $4 FROM bump WHERE took
    ON CONFLICT (zone_id, person_id) DO UPDATE SET entered_at = EXCLUDED.entered_at,
                                                   claimed_at = now(), left_at = NULL
)
SELECT b.inside, b.crossing, b.took, EXISTS (SELECT 1 FROM held) AS held
FROM (SELECT 1) one LEFT JOIN bump b ON true
"""


async def claim(
    conn: asyncpg.Connection,
    zone_id: str,
    person_id: str,
    capacity: int | None,
    entered_at: datetime,
    *,
    enforce: bool,
) -> Claim | None:
    """Take a place in the zone for the person; if `enforce`, only while fewer than
    `capacity` hold one.

    None: the zone has no row yet (`track` makes them).
    """
    limit = capacity if enforce else None
    row = await conn.fetchrow(_CLAIM, zone_id, person_id, limit, entered_at, capacity)
    inside, crossing, took, held = row
    if inside is None:
        return None
    if held:
        return Claim(True, inside, crossing, held=True)
    return Claim(bool(took), inside - bool(took), crossing)


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    zone_id: str
    person_id: str
    capacity: int | None
    entered_at: datetime
    enforce: bool


async def claim_many(conn: asyncpg.Connection, requests: list[ClaimRequest]) -> list[Claim | None]:
    """`claim` for each request, in one round trip; the results in the requests' order.

    Claims of one zone are made in the order given; the zones are taken in id order, as
    every worker does, so that two batches never wait on each other's rows.
    """
    order = sorted(range(len(requests)), key=lambda n: requests[n].zone_id)
    picked = [requests[n] for n in order]
    rows = await conn.fetch(
        "SELECT k, c_inside, c_crossing, c_took, c_held "
        "FROM campusgate_claim_places($1::text[], $2::text[], $3::int[], $4::int[], "
        "$5::timestamptz[])",
        [r.zone_id for r in picked],
        [r.person_id for r in picked],
        [r.capacity if r.enforce else None for r in picked],
        [r.capacity for r in picked],
        [r.entered_at for r in picked],
    )
    results: list[Claim | None] = [None] * len(requests)
    for k, inside, crossing, took, held in rows:
        n = order[k - 1]
        if inside is None:
            continue
        if held:
            results[n] = Claim(True, inside, crossing, held=True)
        else:
            results[n] = Claim(bool(took), inside - bool(took), crossing)
    return results


_LEAVE = """
WITH gone AS (
    UPDATE zone_presence SET left_at = now()
    WHERE zone_id = $1 AND person_id = $2 AND left_at IS NULL
    RETURNING 1
)
UPDATE zone_occupancy SET inside = greatest(inside - (SELECT count(*) FROM gone)::int, 0)
WHERE zone_id = $1
RETURNING inside
"""


async def leave(conn: asyncpg.Connection, zone_id: str, person_id: str) -> int | None:
    """Free the person's place in the zone, if they hold one; the zone's count after.

    The zone's row is locked first, as a claim locks it before the person's place: the
    other order would deadlock with a claim.
    """
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM zone_occupancy WHERE zone_id = $1 FOR UPDATE", zone_id)
        value = await conn.fetchval(_LEAVE, zone_id, person_id)
    return None if value is None else int(value)


# $1 zones, $2 persons. The zones' rows are locked first, in id order (as claims lock
# them, and before the places, as a claim does), so no claim or other batch deadlocks it.
_LEAVE_MANY = """
WITH wanted AS (SELECT DISTINCT z, p FROM unnest($1::text[], $2::text[]) AS w (z, p)),
locked AS MATERIALIZED (
    SELECT zone_id FROM zone_occupancy WHERE zone_id IN (SELECT z FROM wanted)
    ORDER BY zone_id FOR UPDATE
),
gone AS (
    UPDATE zone_presence pr SET left_at = now()
    FROM wanted w
    WHERE pr.zone_id = w.z AND pr.person_id = w.p AND pr.left_at IS NULL
      AND pr.zone_id IN (SELECT zone_id FROM locked)
    RETURNING pr.zone_id
)
UPDATE zone_occupancy o SET inside = greatest(o.inside - g.n, 0)
FROM (SELECT zone_id, count(*)::int AS n FROM gone GROUP BY zone_id) g
WHERE o.zone_id = g.zone_id
"""


async def leave_many(conn: asyncpg.Connection, leaving: list[tuple[str, str]]) -> None:
    """`leave` for each (zone, person), in one statement (one round trip)."""
    if leaving:
        await conn.execute(_LEAVE_MANY, [z for z, _ in leaving], [p for _, p in leaving])


async def track(conn: asyncpg.Connection, zone_ids: Iterable[str]) -> list[str]:
    """Give the zones a row (counted from zero until reconciled); those newly made."""
    rows = await conn.fetch(
        "INSERT INTO zone_occupancy (zone_id, reconciled_at) SELECT z, '-infinity' "
        "FROM unnest($1::text[]) z ON CONFLICT (zone_id) DO NOTHING RETURNING zone_id",
        sorted(set(zone_ids)),
    )
    return [r[0] for r in rows]


async def counts(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """Every tracked zone's (count, crossing)."""
    rows = await conn.fetch("SELECT zone_id, inside, crossing FROM zone_occupancy")
    return {r[0]: (r[1], r[2]) for r in rows}


async def due_for_reconcile(conn: asyncpg.Connection, older_than: datetime) -> list[str]:
    rows = await conn.fetch(
        "SELECT zone_id FROM zone_occupancy WHERE reconciled_at < $1 ORDER BY zone_id",
        older_than,
    )
    return [r[0] for r in rows]


async def reconcile(
    conn: asyncpg.Connection,
    zone_id: str,
    now: datetime,
    max_stay_h: float,
    grace: timedelta,
) -> tuple[int, int] | None:
    """Rebuild the zone's places from the access log; (count before, count after).

    The places are rewritten in one transaction holding the zone's row, so no claim
    interleaves: places claimed within `grace` (their log rows may not be written yet)
    stay, and so do exits within `grace`; older places stay only if the log says the
    person is inside (within the presence horizon). None: the row is busy with another
    worker's reconciliation, or gone.
    """
    # Read the log first, outside the row lock (claims wait while it is held): what it
    # misses meanwhile is younger than `grace`, and kept below.
    inside = await conn.fetch(
        _INSIDE + "SELECT person_id, received_at FROM inside", *_args(now, max_stay_h, zone_id)
    )
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT inside FROM zone_occupancy WHERE zone_id = $1 FOR UPDATE SKIP LOCKED",
            zone_id,
        )
        if before is None:
            return None
        await conn.execute(
            """
            DELETE FROM zone_presence p
            WHERE p.zone_id = $1 AND p.claimed_at < now() - $2::interval
              AND coalesce(p.left_at, '-infinity') < now() - $2::interval
            """,
            zone_id,
            grace,
        )
        await conn.execute(
            """
            INSERT INTO zone_presence (zone_id, person_id, entered_at, claimed_at)
            SELECT $1, person_id, entered_at, '-infinity'
            FROM unnest($2::text[], $3::timestamptz[]) AS i (person_id, entered_at)
            ON CONFLICT (zone_id, person_id) DO NOTHING
            """,
            zone_id,
            [r[0] for r in inside],
            [r[1] for r in inside],
        )
        after = await conn.fetchval(
            """
            UPDATE zone_occupancy
            SET inside = (SELECT count(*) FROM zone_presence
                          WHERE zone_id = $1 AND left_at IS NULL)::int,
                reconciled_at = now()
            WHERE zone_id = $1 RETURNING inside
            """,
            zone_id,
        )
    return int(before), int(after)


# One worker at a time is the zones' steward (gathering watch, reconciliation): it holds
# this session advisory lock, released by PostgreSQL when its session ends (a dead worker).
_STEWARD_LOCK = "campusgate.zone_steward"


async def try_steward_lock(conn: asyncpg.Connection) -> bool:
    """Take the steward's lock for this session if free; whether this session holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", _STEWARD_LOCK))


async def relax_commit(conn: asyncpg.Connection) -> None:
    """Commit this session's claims without waiting for the WAL flush.

    A claim is a write of its own: waiting for its flush (~4 ms on this machine's disk)
    would cap a worker at a few hundred claims a second. Visibility and the row lock are
    unchanged (two workers still never take the last place both); a PostgreSQL crash
    may lose the last claims of a fraction of a second, which the reconciliation with
    the access log (whose rows the journal flushes) restores.
    """
    await conn.execute("SET synchronous_commit TO off")
