"""Alerts: filtered lists, one alert with its lifecycle, acknowledge and resolve."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn, OrgScope, in_scope
from api.permissions import Permission, present_alert, visible_alert_kinds
from api.schemas.alerts import Alert, AlertWithHistory
from gateway.domain.alerts import AlertKind, AlertStatus, Severity
from gateway.services.operations import change_alert
from gateway.store import alert_feed, alerts

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Reader = Allowed(Permission.READ_ALERTS)
Actor = Allowed(Permission.ACT_ON_ALERTS)
CURSOR_HEADER = "X-Alert-Cursor"


class Note(BaseModel):
    note: str = Field(default="", max_length=2000)


def _kinds(
    role_kinds: frozenset[AlertKind] | None, wanted: list[AlertKind] | None
) -> list[str] | None:
    if role_kinds is None:
        return [k.value for k in wanted] if wanted else None
    chosen = [k for k in (wanted or role_kinds) if k in role_kinds]
    return [k.value for k in chosen]


@router.get(
    "",
    response_model=list[Alert],
    responses={
        200: {
            "headers": {
                CURSOR_HEADER: {
                    "description": "the alert stream's cursor taken before this list: "
                    "open /api/alerts/stream?since=<it> to miss nothing",
                    "schema": {"type": "integer"},
                }
            }
        }
    },
)
async def list_alerts(
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    response: Response,
    kind: Annotated[list[AlertKind] | None, Query()] = None,
    severity: Severity | None = None,
    zone: str | None = None,
    status: AlertStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    # Taken before the list, so the stream resumed from it (`?since=`) leaves no gap.
    response.headers[CURSOR_HEADER] = str(await alert_feed.alert_cursor(conn))
    rows = await alerts.list_alerts(
        conn,
        kinds=_kinds(visible_alert_kinds(operator.account.role), kind),
        severity=severity.value if severity else None,
        zone=zone,
        status=status.value if status else None,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        org_scope=scope,
    )
    return [present_alert(asdict(r), operator.account.role) for r in rows]


async def _visible(
    conn: Conn, operator: Reader, scope: str | None, alert_id: str
) -> dict[str, Any]:
    found = await alerts.alert_row(conn, alert_id)
    alert = asdict(found) if found else None
    kinds = visible_alert_kinds(operator.account.role)
    if alert is None or (kinds is not None and alert["kind"] not in kinds):
        raise HTTPException(404, f"no alert {alert_id!r}")
    if scope is not None and not await in_scope(conn, scope, alert["person"] or ""):
        raise HTTPException(404, f"no alert {alert_id!r}")
    return alert


@router.get("/{alert_id}", response_model=AlertWithHistory)
async def get_alert(alert_id: str, operator: Reader, scope: OrgScope, conn: Conn) -> dict[str, Any]:
    alert = await _visible(conn, operator, scope, alert_id)
    alert["history"] = [asdict(s) for s in await alerts.alert_history(conn, alert_id)]
    return present_alert(alert, operator.account.role)


async def _step(
    alert_id: str, target: AlertStatus, body: Note, operator: Actor, conn: Conn
) -> dict[str, Any]:
    changed = await change_alert(conn, alert_id, target, by=operator.name, note=body.note)
    return present_alert(asdict(changed), operator.account.role)


@router.post("/{alert_id}/acknowledge", response_model=Alert)
async def acknowledge(alert_id: str, body: Note, operator: Actor, conn: Conn) -> dict[str, Any]:
    return await _step(alert_id, AlertStatus.ACKNOWLEDGED, body, operator, conn)


@router.post("/{alert_id}/resolve", response_model=Alert)
async def resolve(alert_id: str, body: Note, operator: Actor, conn: Conn) -> dict[str, Any]:
    return await _step(alert_id, AlertStatus.RESOLVED, body, operator, conn)
