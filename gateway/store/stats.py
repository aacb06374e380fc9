"""Campus-wide counts for monitoring: open alerts, devices by presence."""

from __future__ import annotations

import asyncpg


async def open_alert_counts(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """(kind, severity) -> how many alerts are not resolved (open or acknowledged)."""
    rows = await conn.fetch(
        "SELECT kind, severity, count(*) FROM alerts WHERE status <> 'resolved' "
        "GROUP BY kind, severity"
    )
    return {(r[0], r[1]): r[2] for r in rows}


async def device_presence_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """(online, offline) among the devices whose state is known."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE online), count(*) FILTER (WHERE NOT online) "
        "FROM device_status"
    )
    assert row is not None
    return row[0], row[1]
