"""GET /api/me: the signed-in person's own record, and nobody else's.

No route here takes a person id: whose record it is comes only from the session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from api.deps import Conn
from api.person_auth import PersonPrincipal, current_person
from gateway.domain.health import ISOLATION_STATUSES, HealthStatus
from gateway.store.person_accounts import own_record

router = APIRouter(prefix="/api/me", tags=["me"])
CurrentPerson = Annotated[PersonPrincipal, Depends(current_person)]


class Caretaker(BaseModel):
    name: str
    phone: str | None  # how to reach them (the roster's phone), None when not on file


class OwnHealth(BaseModel):
    status: str  # clear when no status is on file or the last one ran out
    since: datetime | None
    until: datetime | None


class Me(BaseModel):
    person_id: str
    name: str
    kind: str
    unit_id: str | None
    unit_name: str | None
    health: OwnHealth
    caretaker: Caretaker | None  # only while in isolation and one is assigned


@router.get("", response_model=Me)
async def me(person: CurrentPerson, conn: Conn) -> Me:
    record = await own_record(conn, person.person_id)
    if record is None:  # the row went between the session check and now
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in")
    health = HealthStatus(record.health_status) if record.health_status else HealthStatus.CLEAR
    ran_out = record.health_until is not None and record.health_until <= datetime.now(UTC)
    if ran_out:
        health = HealthStatus.CLEAR
    caretaker = None
    if health in ISOLATION_STATUSES and record.caretaker_name:
        caretaker = Caretaker(name=record.caretaker_name, phone=record.caretaker_phone)
    return Me(
        person_id=record.person_id,
        name=record.name,
        kind=record.kind,
        unit_id=record.unit_id,
        unit_name=record.unit_name,
        health=OwnHealth(
            status=health.value,
            since=None if ran_out else record.health_since,
            until=None if ran_out else record.health_until,
        ),
        caretaker=caretaker,
    )
