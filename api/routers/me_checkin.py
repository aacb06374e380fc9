"""A person's own daily check-in (issue #15): make today's, read today's and the history.

Only the signed-in person's own record is reachable: no route takes a person id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Conn
from api.person_auth import PersonPrincipal, current_person
from gateway.domain.checkin import (
    MAX_PLACE_CHARS,
    MAX_TEMPERATURE_C,
    MAX_TRAVEL_PLANS_CHARS,
    MIN_TEMPERATURE_C,
    CheckInInvalid,
    Symptom,
    check_in,
)
from gateway.services import checkin as service
from gateway.services.errors import InvalidValueError

router = APIRouter(prefix="/api/me", tags=["check-in"])
Person = Annotated[PersonPrincipal, Depends(current_person)]

Place = Annotated[str, Field(min_length=1, max_length=MAX_PLACE_CHARS, pattern=r"^[^\x00-\x1f]+$")]


class CheckInBody(BaseModel):
    """Today's check-in: where, temperature, symptoms, contact with a case, travel plans."""

    model_config = ConfigDict(extra="forbid")

    location: Literal["on_campus", "off_campus"]
    dormitory: Place | None = None
    city: Place | None = None
    temperature_c: float = Field(
        ge=MIN_TEMPERATURE_C,
        le=MAX_TEMPERATURE_C,
        allow_inf_nan=False,
        description=f"a measurement, {MIN_TEMPERATURE_C}-{MAX_TEMPERATURE_C} C",
    )
    symptoms: list[Symptom] = Field(default_factory=list, max_length=len(Symptom))
    case_contact: bool = False
    travel_plans: str | None = Field(
        default=None, max_length=MAX_TRAVEL_PLANS_CHARS, pattern=r"^[^\x00]*$"
    )


class CheckInAnswer(BaseModel):
    day: str
    submitted_at: str
    hold: Literal["fever_watch"] | None
    updated: bool


@router.post("/checkin", response_model=CheckInAnswer)
async def submit(body: CheckInBody, person: Person, conn: Conn, request: Request) -> dict[str, Any]:
    """Make (or, the same campus day, replace) today's check-in."""
    settings = request.app.state.settings
    try:
        checkin = check_in(
            location=body.location,
            temperature_c=body.temperature_c,
            symptoms=[s.value for s in body.symptoms],
            case_contact=body.case_contact,
            dormitory=body.dormitory,
            city=body.city,
            travel_plans=body.travel_plans,
        )
    except CheckInInvalid as exc:
        raise InvalidValueError(str(exc), exc.field) from None
    return await service.submit_checkin(
        conn,
        person.person_id,
        checkin,
        now=datetime.now(UTC),
        tz=settings.tz,
        threshold_c=settings.fever_threshold_c,
    )


@router.get("/checkins")
async def mine(
    person: Person,
    conn: Conn,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=400)] = 60,
) -> dict[str, Any]:
    """Today's check-in (null when not made yet) and the person's own history."""
    return await service.my_checkins(
        conn,
        person.person_id,
        now=datetime.now(UTC),
        tz=request.app.state.settings.tz,
        limit=limit,
    )
