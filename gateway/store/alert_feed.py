"""The alert feed: every lifecycle step in commit order, read by the consoles' stream.

The cursor is the feed's sequence number (migration 0007), assigned in commit order, so
everything at or below a cursor a client has seen was already visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store.alerts import AlertRow


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One lifecycle step with its alert as it is now (and the person's org unit, for scoping)."""

    cursor: int
    change: str
    operator: str | None
    note: str | None
    changed_at: datetime
    person_org_unit: str | None
    alert: AlertRow


_SELECT = """
SELECT f.seq AS cursor, h.status AS change, h.operator, h.note, h.ts AS changed_at,
       p.org_unit_id AS person_org_unit,
       a.id, a.kind, a.severity, a.ts, a.door, a.zone, a.device, a.person, a.detail, a.status,
       d.name AS door_name, z.name AS zone_name, p.name AS person_name
FROM alert_feed f JOIN alert_history h ON h.id = f.history_id JOIN alerts a ON a.id = h.alert_id
LEFT JOIN people p ON p.id = a.person
LEFT JOIN doors d ON d.id = a.door
LEFT JOIN zones z ON z.id = a.zone
"""


def _change(r: asyncpg.Record) -> AlertChange:
    return AlertChange(*r[:6], alert=AlertRow(*r[6:]))


async def alert_change(conn: asyncpg.Connection, cursor: int) -> AlertChange | None:
    """One lifecycle step (by its feed cursor) with its alert as it is now."""
    row = await conn.fetchrow(_SELECT + " WHERE f.seq = $1", cursor)
    return _change(row) if row else None


async def alert_changes_after(
    conn: asyncpg.Connection, *, cursor: int | None, since: datetime | None, limit: int = 1000
) -> list[AlertChange]:
    """Steps after a cursor or a commit time, in commit order: what a console missed."""
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::bigint IS NULL OR f.seq > $1)"
        " AND ($2::timestamptz IS NULL OR f.committed_at > $2)"
        " ORDER BY f.seq LIMIT $3",
        cursor,
        since,
        limit,
    )
    return [_change(r) for r in rows]


async def alert_cursor(conn: asyncpg.Connection) -> int:
    """The newest feed cursor: a list read after this is complete up to it."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_feed"))
