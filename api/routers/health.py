"""Health statuses: list, one person's status and history, set and clear (health officers);
fever re-measurement: guards record a reading, health officers review and clear or escalate.

Guards (RECORD_READING) see only who is on fever_watch and the readings they enter:
never reasons, history or other statuses.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field, model_validator

from api.deps import Allowed, Conn, OrgScope, ensure_in_scope
from api.naming import add_names, name_change
from api.permissions import Permission
from api.schemas.health import (
    FeverReviewEntry,
    FeverWatchEntry,
    HealthListing,
    PersonHealth,
    Reading,
)
from gateway.domain.health import HealthStatus
from gateway.services import health as service
from gateway.store import health as health_store
from gateway.store.health import health_history, health_of
from gateway.store.readings import fever_review, fever_watch_people, readings_of

router = APIRouter(prefix="/api/health", tags=["health"])
Reader = Allowed(Permission.READ_HEALTH)
Writer = Allowed(Permission.WRITE_HEALTH)
Measurer = Allowed(Permission.RECORD_READING)

_Text = Field(min_length=1, max_length=2000)
_PersonRef = Field(default=None, min_length=1, max_length=200)


class _Until(BaseModel):
    """`until` (a time with its offset) or `until_date`: the start of that campus-local day,
    as a date alone means in the manifest (contract section 6)."""

    until: datetime | None = None
    until_date: date | None = None

    @model_validator(mode="after")
    def _one_until(self) -> _Until:
        if self.until is not None and self.until_date is not None:
            raise ValueError("give until or until_date, not both")
        return self

    def until_in(self, tz: ZoneInfo) -> datetime | None:
        if self.until_date is not None:
            return datetime.combine(self.until_date, time(), tzinfo=tz)
        return self.until


class HealthChange(_Until):
    status: HealthStatus
    reason: str = _Text
    caretaker_id: str | None = _PersonRef


class HealthClear(BaseModel):
    reason: str = _Text


class ReadingIn(BaseModel):
    celsius: float = Field(ge=30.0, le=45.0)
    measured_at: datetime | None = None
    note: str = Field(default="", max_length=500)


class FeverDecision(_Until):
    outcome: Literal["clear", "suspected"]
    reason: str = _Text
    # until / until_date: suspected only
    caretaker_id: str | None = _PersonRef  # suspected only; chosen when left out


@router.get("", response_model=list[HealthListing])
async def list_health(
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    status: HealthStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[health_store.HealthListing]:
    return await health_store.list_health(
        conn,
        status=status.value if status else None,
        org_scope=scope,
        limit=limit,
        offset=offset,
    )


@router.get("/fever-watch", response_model=list[FeverWatchEntry])
async def fever_watch(
    operator: Measurer,
    conn: Conn,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """People awaiting a re-measurement (id, name, unit, since, readings so far): no reasons."""
    return await fever_watch_people(conn, datetime.now(UTC), q=q or None, limit=limit)


@router.get("/fever-review", response_model=list[FeverReviewEntry])
async def review_list(operator: Reader, conn: Conn) -> list[dict[str, Any]]:
    """People on fever_watch with the readings taken since the watch began."""
    return await fever_review(conn, datetime.now(UTC))


@router.get("/{person_id}", response_model=PersonHealth)
async def get_health(
    person_id: str, operator: Reader, scope: OrgScope, conn: Conn
) -> dict[str, Any]:
    await ensure_in_scope(conn, scope, person_id)
    found = await health_of(conn, person_id)
    current = asdict(found) if found else None
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
    readings = await readings_of(conn, person_id)
    await add_names(conn, [*([current] if current else []), *history])
    return {"person_id": person_id, "current": current, "history": history, "readings": readings}


@router.put("/{person_id}")
async def set_status(
    person_id: str, body: HealthChange, operator: Writer, conn: Conn, request: Request
) -> dict[str, Any]:
    """Set a status; isolation statuses without a caretaker get one chosen."""
    change = await service.change_status(
        conn,
        person_id,
        body.status,
        by=operator.name,
        reason=body.reason,
        until=body.until_in(request.app.state.settings.tz),
        caretaker_id=body.caretaker_id,
    )
    return await name_change(conn, change)


@router.post("/{person_id}/clear")
async def clear_status(
    person_id: str, body: HealthClear, operator: Writer, conn: Conn
) -> dict[str, Any]:
    change = await service.change_status(
        conn, person_id, HealthStatus.CLEAR, by=operator.name, reason=body.reason
    )
    return await name_change(conn, change)


@router.post("/{person_id}/readings", status_code=201)
async def record_reading(
    person_id: str, body: ReadingIn, operator: Measurer, request: Request, conn: Conn
) -> dict[str, Any]:
    """A manual re-measurement of a fever_watch person (409 for anyone else); `fever` is
    true at or above the fever threshold."""
    threshold = request.app.state.settings.fever_threshold_c
    reading = await service.record_reading(
        conn,
        person_id,
        body.celsius,
        by=operator.name,
        threshold_c=threshold,
        measured_at=body.measured_at,
        note=body.note,
    )
    return {**reading, "threshold_c": threshold}


@router.get("/{person_id}/readings", response_model=list[Reading])
async def list_readings(
    person_id: str, operator: Reader, scope: OrgScope, conn: Conn
) -> list[dict[str, Any]]:
    await ensure_in_scope(conn, scope, person_id)
    return await readings_of(conn, person_id)


@router.post("/{person_id}/fever-review")
async def decide_fever(
    person_id: str, body: FeverDecision, operator: Writer, conn: Conn, request: Request
) -> dict[str, Any]:
    """After a re-measurement: back to clear, or escalate to suspected (with a caretaker).
    409 when the person is no longer on fever_watch (someone decided already)."""
    escalate = body.outcome == "suspected"
    if not escalate and (body.until or body.until_date or body.caretaker_id):
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "until"],
                    "msg": "clear takes no until or caretaker",
                    "type": "value_error",
                }
            ],
        )
    change = await service.resolve_fever_watch(
        conn,
        person_id,
        escalate=escalate,
        by=operator.name,
        reason=body.reason,
        until=body.until_in(request.app.state.settings.tz),
        caretaker_id=body.caretaker_id,
    )
    return await name_change(conn, change)
