"""Changes operators make through the API: alert steps and grants (health: services.health).

Each runs in one transaction with its audit entry (who, what, before, after).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.alerts import AlertStatus
from gateway.services.errors import ConflictError, InvalidReferenceError, NotFoundError
from gateway.store import grants, roster_write
from gateway.store.alerts import (
    AlertNotFound,
    AlertRow,
    AlertTransitionError,
    alert_row,
    set_alert_status,
)
from gateway.store.audit import record_audit

__all__ = [
    "AlertNotFound",
    "AlertTransitionError",
    "GrantExistsError",
    "change_alert",
    "create_grant",
    "remove_grant",
]


class GrantExistsError(ConflictError):
    """The subject already has a grant for the zone."""


def _jsonable(row: Any) -> dict[str, Any] | None:
    """An audit snapshot of a row (a dict or a store record): times as ISO 8601 text."""
    if row is None:
        return None
    if is_dataclass(row) and not isinstance(row, type):
        row = asdict(row)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


async def change_alert(
    conn: asyncpg.Connection, alert_id: str, status: AlertStatus, *, by: str, note: str
) -> AlertRow:
    """Acknowledge or resolve an alert; raises AlertNotFound / AlertTransitionError."""
    async with conn.transaction():
        before = await alert_row(conn, alert_id)
        if before is None:
            raise AlertNotFound(f"no alert {alert_id!r}")
        await set_alert_status(conn, alert_id, status, by, note)
        after = await alert_row(conn, alert_id)
        await record_audit(
            conn,
            by,
            status.value,
            "alert",
            alert_id,
            before={"status": before.status},
            after={"status": status.value, "note": note},
        )
    assert after is not None
    return after


async def create_grant(
    conn: asyncpg.Connection, grant: dict[str, Any], *, by: str
) -> grants.GrantRow:
    """Insert a grant after checking what it names; raises InvalidReferenceError or GrantExistsError."""
    async with conn.transaction():
        checks = (
            ("zone_id", "zones", grant.get("zone_id")),
            ("subject_person", "people", grant.get("subject_person")),
            ("subject_org_unit", "org_units", grant.get("subject_org_unit")),
        )
        for field, table, value in checks:
            if value is not None and not await roster_write.row_exists(conn, table, value):
                raise InvalidReferenceError(
                    field, f"unknown {field.removeprefix('subject_')} {value!r}"
                )
        try:
            created = await grants.insert_grant(conn, grant)
        except asyncpg.UniqueViolationError:
            raise GrantExistsError("this subject already has a grant for this zone") from None
        await record_audit(conn, by, "create", "grant", str(created.id), after=_jsonable(created))
    return created


async def remove_grant(conn: asyncpg.Connection, grant_id: int, *, by: str) -> None:
    async with conn.transaction():
        before = await grants.get_grant(conn, grant_id)
        if before is None:
            raise NotFoundError(f"no grant {grant_id}")
        await grants.delete_grant(conn, grant_id)
        await record_audit(conn, by, "delete", "grant", str(grant_id), before=_jsonable(before))
