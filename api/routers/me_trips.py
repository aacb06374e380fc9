"""A person's own trips, from their phone: plan one ahead, call it off, declare the
return. Only their own: another person's trip answers 404, as no trip does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from api.deps import Conn
from api.person_auth import PersonPrincipal, current_person
from api.schemas.travel import TravelDeclaration
from api.schemas.trip_plans import MyTrip, TripPlanIn, TripReturnIn
from gateway.services import trip_plans as service
from gateway.services.travel import TravelRules
from gateway.store import travel as store

router = APIRouter(prefix="/api/me/trips", tags=["me"])
Me = Annotated[PersonPrincipal, Depends(current_person)]


def _rules(request: Request) -> TravelRules:
    settings = request.app.state.settings
    return TravelRules(settings.isolation_days, settings.tz)


def _mine(outcome: service.PlanOutcome, person_id: str) -> dict[str, Any]:
    # The evaluation may name other people (those in this person's care get another
    # caretaker): the traveller learns only about themself.
    return {
        "declaration": outcome.declaration,
        "matched_areas": outcome.matched_areas,
        "isolated": person_id in outcome.evaluation.isolated,
    }


@router.get("", response_model=list[TravelDeclaration])
async def my_trips(me: Me, conn: Conn) -> list[dict[str, Any]]:
    """My trips, planned or filed for me, newest departure first."""
    return await store.trips_of(conn, me.person_id)


@router.post("", response_model=MyTrip, status_code=status.HTTP_201_CREATED)
async def plan(body: TripPlanIn, me: Me, request: Request, conn: Conn) -> dict[str, Any]:
    """Plan a trip before leaving. Where the campus's level says so it waits for my
    liaison (`approval: pending`); the answer names listed areas the destination is in."""
    outcome = await service.plan_trip(
        conn, me.person_id, body.destination, body.departure_date, body.return_date,
        body.note, _rules(request), now=datetime.now(UTC),
    )  # fmt: skip
    return _mine(outcome, me.person_id)


@router.post("/{declaration_id}/return", response_model=MyTrip)
async def came_back(
    declaration_id: int, body: TripReturnIn, me: Me, request: Request, conn: Conn
) -> dict[str, Any]:
    """I am back: the trip's return date becomes the real one; a return from a listed
    area puts me in home isolation (`isolated`)."""
    outcome = await service.declare_return(
        conn, me.person_id, declaration_id, body.return_date, _rules(request), now=datetime.now(UTC)
    )
    return _mine(outcome, me.person_id)


@router.post("/{declaration_id}/cancel", response_model=TravelDeclaration)
async def call_off(declaration_id: int, me: Me, request: Request, conn: Conn) -> dict[str, Any]:
    """Call a plan off before leaving."""
    return await service.cancel_plan(
        conn, me.person_id, declaration_id, _rules(request), now=datetime.now(UTC)
    )
