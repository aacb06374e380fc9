"""Health statuses: list, one person's status and history, set and clear (health officers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.routers.people import ensure_in_scope, scope_of
from gateway.domain.health import HealthStatus
from gateway.services.operations import NotFoundError, ReferenceError_, set_health_status
from gateway.store import console
from gateway.store.health import health_history

router = APIRouter(prefix="/api/health", tags=["health"])
Reader = Allowed(Permission.READ_HEALTH)
Writer = Allowed(Permission.WRITE_HEALTH)


class HealthChange(BaseModel):
    status: HealthStatus
    reason: str = Field(min_length=1, max_length=2000)
    until: datetime | None = None
    caretaker_id: str | None = Field(default=None, max_length=200)


class HealthClear(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.get("")
async def list_health(
    operator: Reader,
    conn: Conn,
    status: HealthStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    return await console.list_health(
        conn,
        status=status.value if status else None,
        org_scope=scope_of(operator),
        limit=limit,
        offset=offset,
    )


@router.get("/{person_id}")
async def get_health(person_id: str, operator: Reader, conn: Conn) -> dict[str, Any]:
    await ensure_in_scope(conn, operator, person_id)
    current = await console.health_of(conn, person_id)
    history = [
        {
            "status": r.status.value,
            "since": r.since,
            "until": r.until,
            "reason": r.reason,
            "caretaker_id": r.caretaker_id,
            "set_by": r.set_by,
            "changed_by": by,
            "changed_at": at,
        }
        for r, by, at in await health_history(conn, person_id)
    ]
    return {"person_id": person_id, "current": current, "history": history}


async def _set(conn: Conn, person_id: str, by: str, **change: Any) -> dict[str, Any]:
    try:
        return await set_health_status(conn, person_id, by=by, **change)
    except NotFoundError:
        raise HTTPException(404, f"no person {person_id!r}") from None
    except ReferenceError_ as exc:
        raise HTTPException(
            422, [{"loc": ["body", exc.field], "msg": str(exc), "type": "reference"}]
        ) from None


@router.put("/{person_id}")
async def set_status(
    person_id: str, body: HealthChange, operator: Writer, conn: Conn
) -> dict[str, Any]:
    return await _set(
        conn,
        person_id,
        operator.name,
        status=body.status,
        reason=body.reason,
        until=body.until,
        caretaker_id=body.caretaker_id,
    )


@router.post("/{person_id}/clear")
async def clear_status(
    person_id: str, body: HealthClear, operator: Writer, conn: Conn
) -> dict[str, Any]:
    return await _set(conn, person_id, operator.name, status=HealthStatus.CLEAR, reason=body.reason)
