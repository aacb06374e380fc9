"""The access log: batched writes, duplicate re-seeding, occupancy, partitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from gateway.domain.campus import AccessRecord

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
    )


async def write_access_records(conn: asyncpg.Connection, records: Sequence[AccessRecord]) -> None:
    """Append records to the log with one COPY."""
    if not records:
        return
    await conn.copy_records_to_table(
        "access_events", records=[_row(r) for r in records], columns=_COLUMNS
    )


async def recent_decisions(
    conn: asyncpg.Connection, since: datetime, *, with_person: bool = False
) -> list[tuple[str, ...]]:
    """(device_id, event_id, decision, reason) of card events finally decided since `since`,
    oldest first; `with_person` adds the person id (or None) and `received_at` as a fifth
    and sixth item.

    Used to re-seed duplicate detection after a restart.
    """
    rows = await conn.fetch(
        """
        SELECT device_id, event_id, decision, reason, person_id, received_at FROM access_events
        WHERE received_at >= $1 AND type = 'card' AND decision IN ('admit', 'deny')
        ORDER BY received_at
        """,
        since,
    )
    if with_person:
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
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
    return [
        await conn.fetchval("SELECT campusgate_ensure_access_partition($1)", when)
        for when in (this_month, next_month)
    ]
