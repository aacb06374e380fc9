"""Campus-wide counts: open alerts and devices by presence (monitoring), the day so far."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store.org_tree import subtree_cte


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


@dataclass(frozen=True, slots=True)
class CountsSince:
    """Card decisions and alerts since a moment; alerts by kind only campus-wide."""

    since: datetime
    admitted: int
    denied: int
    denied_by_reason: dict[str, int]
    fevers: int
    alerts_by_kind: dict[str, int]


async def counts_since(
    conn: asyncpg.Connection, since: datetime, org_scope: str | None = None
) -> CountsSince:
    """Admitted, denied by reason, fevers and alerts by kind since `since`."""
    rows = await conn.fetch(
        subtree_cte(1)
        + """
        SELECT decision, reason, count(*)::int FROM access_events e
        WHERE e.received_at >= $2 AND e.type = 'card' AND e.decision IN ('admit', 'deny')
          AND ($1::text IS NULL OR e.person_id IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
        GROUP BY decision, reason
        """,
        org_scope,
        since,
    )
    admitted = sum(r[2] for r in rows if r[0] == "admit")
    denied = {r[1]: r[2] for r in rows if r[0] == "deny"}
    alerts = await conn.fetch(
        "SELECT kind, count(*)::int FROM alerts WHERE ts >= $1 GROUP BY kind", since
    )
    by_kind = {r[0]: r[1] for r in alerts}
    return CountsSince(
        since=since,
        admitted=admitted,
        denied=sum(denied.values()),
        denied_by_reason=denied,
        fevers=denied.get("fever", 0),
        alerts_by_kind=by_kind if org_scope is None else {},
    )
