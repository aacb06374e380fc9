"""Stored alerts and their lifecycle (open -> acknowledged -> resolved), with history."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from gateway.domain.alerts import Alert, AlertKind, AlertStatus, Severity


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


async def insert_alerts(conn: asyncpg.Connection, alerts: Sequence[Alert]) -> None:
    """Store new alerts (an id already stored is left as it is) and open their history."""
    if not alerts:
        return
    async with conn.transaction():
        await conn.executemany(
            """
            WITH new AS (
                INSERT INTO alerts (id, kind, severity, ts, door, zone, device, person, detail, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, status, ts
            )
            INSERT INTO alert_history (alert_id, status, operator, note, ts)
            SELECT id, status, NULL, 'raised', ts FROM new
            """,
            [
                (
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
                )
                for a in alerts
            ],
        )


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


async def alert_history(
    conn: asyncpg.Connection, alert_id: str
) -> list[tuple[AlertStatus, str | None, str]]:
    """(status, operator, note) of every step of the alert, oldest first."""
    rows = await conn.fetch(
        "SELECT status, operator, note FROM alert_history WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )
    return [(AlertStatus(r[0]), r[1], r[2]) for r in rows]


async def open_alerts(conn: asyncpg.Connection, kind: AlertKind | str) -> list[Alert]:
    """Every alert of this kind not yet resolved, oldest first (the gateway's start-up view)."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE kind = $1 AND status <> 'resolved' ORDER BY ts", AlertKind(kind).value
    )
    return [_alert(r) for r in rows]
