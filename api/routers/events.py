"""The access log: filtered by person, door, zone, time and decision."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import Allowed, Conn, OrgScope
from api.permissions import Permission
from api.redaction import present_event
from api.schemas.events import AccessEventView
from gateway.store.access_log import list_access_events

router = APIRouter(prefix="/api/events", tags=["events"])
Reader = Allowed(Permission.READ_EVENTS)


@router.get("", response_model=list[AccessEventView])
async def list_events(
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    person: str | None = None,
    door: str | None = None,
    zone: str | None = None,
    decision: Literal["admit", "deny", "pending"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    rows = await list_access_events(
        conn,
        person=person,
        door=door,
        zone=zone,
        decision=decision,
        since=since,
        until=until,
        org_scope=scope,
        limit=limit,
        offset=offset,
    )
    return [present_event(asdict(r), operator.account.role) for r in rows]
