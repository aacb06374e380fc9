"""The access log: batched writes, duplicate re-seeding, occupancy, partitions, reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Verdict
from gateway.store import tracing_stays
from gateway.store.org_tree import subtree_cte

_COLUMNS = (
    "device_id",
    "event_id",
    "type",
    "device_ts",
    "received_at",
    "door_id",
    "zone_id",
    "person_id",
    "card_uid",
    "direction",
    "celsius",
    "decision",
    "reason",
    "decided_at",
    "latency_us",
    "detail",
    "gateway_ts",
)


def _value(member: object) -> object:
    return None if member is None else member.value  # type: ignore[attr-defined]


def _row(r: AccessRecord) -> tuple[object, ...]:
    return (
        r.device_id,
        r.event_id,
        r.type.value,
        r.device_ts,
        r.received_at,
        r.door_id,
        r.zone_id,
        r.person_id,
        r.card_uid,
        _value(r.direction),
        r.celsius,
        _value(r.verdict),
        _value(r.reason),
        r.decided_at,
        r.latency_us,
        r.detail,
        r.gateway_ts,
    )


async def write_access_records(conn: asyncpg.Connection, records: Sequence[AccessRecord]) -> None:
    """Append records to the log with one COPY.

    An admitted passage logged at a device time well before it arrived (queued while
    the gateway was down) marks the stored stays it may change as stale.
    """
    if not records:
        return
    rows = [_row(r) for r in records]
    late = [
        r.received_at
        for r in records
        if r.gateway_ts is not None
        and r.gateway_ts - r.received_at > tracing_stays.LATE
        and r.verdict is Verdict.ADMIT
        and r.person_id is not None
    ]
    if not late:  # one COPY is atomic by itself
        await conn.copy_records_to_table("access_events", records=rows, columns=_COLUMNS)
        return
    async with conn.transaction():  # the rows and the mark, or neither (a retry repeats both)
        await conn.copy_records_to_table("access_events", records=rows, columns=_COLUMNS)
        await tracing_stays.mark_stale(conn, min(late))


async def recent_decisions(
    conn: asyncpg.Connection,
    since: datetime,
    *,
    with_person: bool = False,
    devices: Sequence[str] | None = None,
) -> list[tuple[str, ...]]:
    """(device_id, event_id, decision, reason) of card events finally decided since `since`,
    oldest first; `with_person` adds the person id (or None), `received_at` and whether the
    row came from an offline upload as a fifth, sixth and seventh item.

    Used to re-seed duplicate detection after a restart, or (`devices`: only those) when
    a worker takes over a partition from another.
    """
    rows = await conn.fetch(
        """
        SELECT device_id, event_id, decision, reason, person_id, received_at,
               (detail->>'offline') IS NOT NULL AS offline
        FROM access_events
        WHERE received_at >= $1 AND type = 'card' AND decision IN ('admit', 'deny')
          AND ($2::text[] IS NULL OR device_id = ANY($2::text[]))
        ORDER BY received_at
        """,
        since,
        list(devices) if devices is not None else None,
    )
    if with_person:
        return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def zone_occupancy(conn: asyncpg.Connection, since: datetime | None = None) -> dict[str, int]:
    """Admitted in minus admitted out per zone (from `since`, or all of the log), at least 0."""
    rows = await conn.fetch(
        """
        SELECT zone_id,
               greatest(0, count(*) FILTER (WHERE direction = 'in')
                         - count(*) FILTER (WHERE direction = 'out'))::int
        FROM access_events
        WHERE type = 'card' AND decision = 'admit' AND zone_id IS NOT NULL
          AND ($1::timestamptz IS NULL OR received_at >= $1)
        GROUP BY zone_id
        """,
        since,
    )
    return {r[0]: r[1] for r in rows}


async def ensure_partitions(conn: asyncpg.Connection, now: datetime) -> list[str]:
    """Create the month partitions (UTC) of `now` and of the month after; returns their names."""
    this_month = now.replace(day=1)
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    return [await ensure_partition(conn, when) for when in (this_month, next_month)]


async def ensure_partition(conn: asyncpg.Connection, when: datetime) -> str:
    """Create the month partition (UTC) holding `when` if missing; returns its name."""
    name: str = await conn.fetchval("SELECT campusgate_ensure_access_partition($1)", when)
    return name


async def is_empty(conn: asyncpg.Connection) -> bool:
    """Whether the access log holds no row at all."""
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM access_events LIMIT 1)")


async def is_logged(conn: asyncpg.Connection, record: AccessRecord) -> bool:
    """Whether this very record (device, event and receipt time) is in the log."""
    return bool(
        await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM access_events
                           WHERE device_id = $1 AND event_id = $2 AND received_at = $3)
            """,
            record.device_id,
            record.event_id,
            record.received_at,
        )
    )


async def decided_cards(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Those of `keys` (device, event id) whose card is in the log with a final decision."""
    if not keys:
        return set()
    rows = await conn.fetch(
        """
        SELECT DISTINCT a.device_id, a.event_id
        FROM access_events a
        JOIN unnest($1::text[], $2::text[]) AS k(device_id, event_id)
          ON a.device_id = k.device_id AND a.event_id = k.event_id
        WHERE a.type = 'card' AND a.decision IN ('admit', 'deny')
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["device_id"], r["event_id"]) for r in rows}


@dataclass(frozen=True, slots=True)
class AccessEventRow:
    """One logged event as operators read it."""

    device_id: str
    event_id: str
    type: str
    device_ts: datetime
    received_at: datetime
    door_id: str | None
    zone_id: str | None
    person_id: str | None
    card_uid: str | None
    direction: str | None
    celsius: float | None
    decision: str | None
    reason: str | None


async def list_access_events(
    conn: asyncpg.Connection,
    *,
    person: str | None,
    door: str | None,
    zone: str | None,
    decision: str | None,
    since: datetime | None,
    until: datetime | None,
    org_scope: str | None,
    limit: int,
    offset: int,
) -> list[AccessEventRow]:
    """Logged events by filter, newest first; with `org_scope`, only people of that subtree."""
    rows = await conn.fetch(
        subtree_cte(1)
        + """
        SELECT e.device_id, e.event_id, e.type, e.device_ts, e.received_at, e.door_id, e.zone_id,
               e.person_id, e.card_uid, e.direction, e.celsius, e.decision, e.reason
        FROM access_events e
        WHERE ($2::text IS NULL OR e.person_id IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
          AND ($3::text IS NULL OR e.person_id = $3) AND ($4::text IS NULL OR e.door_id = $4)
          AND ($5::text IS NULL OR e.zone_id = $5) AND ($6::text IS NULL OR e.decision = $6)
          AND ($7::timestamptz IS NULL OR e.received_at >= $7)
          AND ($8::timestamptz IS NULL OR e.received_at < $8)
        ORDER BY e.received_at DESC LIMIT $9 OFFSET $10
        """,
        org_scope,
        org_scope,
        person,
        door,
        zone,
        decision,
        since,
        until,
        limit,
        offset,
    )
    return [AccessEventRow(*r) for r in rows]
