"""Stored alerts and their lifecycle (open -> acknowledged -> resolved), with history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.alerts import Alert, AlertKind, AlertStatus, Severity
from gateway.store.org_tree import subtree_cte


class AlertNotFound(LookupError):
    """No alert with that id."""


class AlertTransitionError(ValueError):
    """A lifecycle step that is not allowed (e.g. reopening a resolved alert)."""


_NEXT: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.RESOLVED}),
    AlertStatus.RESOLVED: frozenset(),
}

_SELECT = "SELECT id, kind, ts, severity, door, zone, device, person, detail, status FROM alerts"


def _alert(r: asyncpg.Record) -> Alert:
    return Alert(
        r[0],
        AlertKind(r[1]),
        r[2],
        Severity(r[3]),
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        AlertStatus(r[9]),
    )


async def insert_alerts(
    conn: asyncpg.Connection, alerts: Sequence[Alert], *, publish_pending: bool = False
) -> list[Alert]:
    """Store new alerts and open their history; returns those not stored.

    Not stored: an id stored already, or an alert whose kind and subject has an open alert
    already (migration 0022: one device_offline per device, one gathering per zone, one
    zone_full per zone and crossing), as when several workers see the same thing.
    `publish_pending`: raised where no MQTT client is (the API's jobs), so a gateway
    publishes them (migration 0031, `claim_pending_publications`).
    """
    skipped: list[Alert] = []
    if not alerts:
        return skipped
    async with conn.transaction():
        for a in alerts:
            stored = await conn.fetchval(
                """
                WITH new AS (
                    INSERT INTO alerts
                        (id, kind, severity, ts, door, zone, device, person, detail, status,
                         publish_pending)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                    ON CONFLICT DO NOTHING
                    RETURNING id, status, ts
                ),
                history AS (
                    INSERT INTO alert_history (alert_id, status, operator, note, ts)
                    SELECT id, status, NULL, 'raised', ts FROM new
                )
                SELECT count(*) FROM new
                """,
                a.id,
                a.kind.value,
                a.severity.value,
                a.ts,
                a.door,
                a.zone,
                a.device,
                a.person,
                a.detail,
                a.status.value,
                publish_pending,
            )
            if not stored:
                skipped.append(a)
    return skipped


async def claim_pending_publications(conn: asyncpg.Connection, limit: int) -> list[Alert]:
    """Take up to `limit` alerts waiting to be published (oldest first), as they are now.

    SKIP LOCKED: workers claiming at once take different alerts, so each is published once.
    """
    rows = await conn.fetch(
        """
        UPDATE alerts SET publish_pending = false
        WHERE id IN (
            SELECT id FROM alerts WHERE publish_pending ORDER BY ts LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id, kind, ts, severity, door, zone, device, person, detail, status
        """,
        limit,
    )
    return sorted((_alert(r) for r in rows), key=lambda a: a.ts)


async def is_stored(conn: asyncpg.Connection, alert_id: str) -> bool:
    """Whether the alert `alert_id` (ids are unique) is stored."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1)", alert_id))


async def get_alert(conn: asyncpg.Connection, alert_id: str) -> Alert | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", alert_id)
    return _alert(row) if row else None


async def open_alert_for(
    conn: asyncpg.Connection, kind: AlertKind | str, device: str
) -> Alert | None:
    """The newest not yet resolved alert of this kind for this device, if any."""
    row = await conn.fetchrow(
        f"{_SELECT} WHERE kind = $1 AND device = $2 AND status <> 'resolved' "
        "ORDER BY ts DESC LIMIT 1",
        AlertKind(kind).value,
        device,
    )
    return _alert(row) if row else None


async def set_alert_status(
    conn: asyncpg.Connection,
    alert_id: str,
    status: AlertStatus | str,
    operator: str,
    note: str = "",
) -> Alert:
    """Move an alert one step along its lifecycle and record who did it; returns the alert."""
    target = AlertStatus(status)
    async with conn.transaction():
        row = await conn.fetchrow(f"{_SELECT} WHERE id = $1 FOR UPDATE", alert_id)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id!r}")
        current = AlertStatus(row[9])
        if target not in _NEXT[current]:
            raise AlertTransitionError(
                f"alert {alert_id} is {current.value}; it cannot become {target.value}"
            )
        updated = await conn.fetchrow(
            "UPDATE alerts SET status = $2, updated_at = now() WHERE id = $1 "
            "RETURNING id, kind, ts, severity, door, zone, device, person, detail, status",
            alert_id,
            target.value,
        )
        await conn.execute(
            "INSERT INTO alert_history (alert_id, status, operator, note) VALUES ($1, $2, $3, $4)",
            alert_id,
            target.value,
            operator,
            note,
        )
    return _alert(updated)


@dataclass(frozen=True, slots=True)
class AlertStep:
    """One step of an alert's lifecycle: the status it took, by whom, when, with what note."""

    id: int
    status: AlertStatus
    operator: str | None
    note: str | None
    ts: datetime


async def alert_history(conn: asyncpg.Connection, alert_id: str) -> list[AlertStep]:
    """Every step of the alert, oldest first."""
    rows = await conn.fetch(
        "SELECT id, status, operator, note, ts FROM alert_history WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )
    return [AlertStep(r[0], AlertStatus(r[1]), r[2], r[3], r[4]) for r in rows]


async def open_alerts(conn: asyncpg.Connection, kind: AlertKind | str) -> list[Alert]:
    """Every alert of this kind not yet resolved, oldest first (the gateway's start-up view)."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE kind = $1 AND status <> 'resolved' ORDER BY ts", AlertKind(kind).value
    )
    return [_alert(r) for r in rows]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as operators read it: with the display names of its door, zone and person."""

    id: str
    kind: str
    severity: str
    ts: datetime
    door: str | None
    zone: str | None
    device: str | None
    person: str | None
    detail: dict[str, Any]
    status: str
    door_name: str | None
    zone_name: str | None
    person_name: str | None


# A derived table so callers filter on the alert's own columns without qualifying them.
_ROWS = """
SELECT * FROM (
    SELECT a.id, a.kind, a.severity, a.ts, a.door, a.zone, a.device, a.person, a.detail,
           a.status, d.name AS door_name, z.name AS zone_name, p.name AS person_name
    FROM alerts a
    LEFT JOIN doors d ON d.id = a.door
    LEFT JOIN zones z ON z.id = a.zone
    LEFT JOIN people p ON p.id = a.person
) AS alerts
"""


async def list_alerts(
    conn: asyncpg.Connection,
    *,
    kinds: list[str] | None,
    severity: str | None,
    zone: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    org_scope: str | None = None,
) -> list[AlertRow]:
    """Alerts by filter; with `org_scope`, only those about people of that subtree."""
    rows = await conn.fetch(
        subtree_cte(9)
        + _ROWS
        + """
        WHERE ($1::text[] IS NULL OR kind = ANY($1)) AND ($2::text IS NULL OR severity = $2)
          AND ($3::text IS NULL OR zone = $3) AND ($4::text IS NULL OR status = $4)
          AND ($5::timestamptz IS NULL OR ts >= $5) AND ($6::timestamptz IS NULL OR ts < $6)
          AND ($9::text IS NULL OR person IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
        ORDER BY ts DESC, id LIMIT $7 OFFSET $8
        """,
        kinds,
        severity,
        zone,
        status,
        since,
        until,
        limit,
        offset,
        org_scope,
    )
    return [AlertRow(*r) for r in rows]


async def alert_row(conn: asyncpg.Connection, alert_id: str) -> AlertRow | None:
    """One alert as operators read it (`get_alert` is the domain object the gateway keeps)."""
    row = await conn.fetchrow(_ROWS + " WHERE id = $1", alert_id)
    return AlertRow(*row) if row else None


async def resolve_back_online(conn: asyncpg.Connection, operator: str = "gateway") -> int:
    """Resolve open `device_offline` alerts of devices online again since; how many.

    The worker that raised one resolves it when the device comes back; this catches one
    whose raiser died meanwhile (another worker's duplicate was never stored, migration
    0022, so that worker has no id to resolve).
    """
    async with conn.transaction():
        rows = await conn.fetch(
            """
            UPDATE alerts a SET status = 'resolved', updated_at = now()
            FROM device_status s
            WHERE a.kind = 'device_offline' AND a.status <> 'resolved'
              AND s.device_id = a.device AND s.online AND s.last_seen > a.ts
            RETURNING a.id
            """
        )
        await conn.executemany(
            "INSERT INTO alert_history (alert_id, status, operator, note) "
            "VALUES ($1, 'resolved', $2, 'device back online')",
            [(r[0], operator) for r in rows],
        )
    return len(rows)
