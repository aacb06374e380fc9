"""Trips people plan themselves (issue #15, point 3): declared ahead from their own page,
approved or refused by their liaison where the campus's response level says trips need
approval, and closed by the person declaring their return. The existing matching against
epidemic areas (gateway/services/travel.py) runs on the plan and again on the return;
a return from a listed area puts the person in home isolation as any trip does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from gateway.domain.travel import TravelDeclaration, matching_areas
from gateway.services import places
from gateway.services.errors import ConflictError, InvalidValueError, NotFoundError
from gateway.services.operations import _jsonable
from gateway.services.travel import Evaluation, TravelRules, evaluate
from gateway.store import travel as store
from gateway.store.audit import record_audit
from gateway.store.levels import load_levels
from gateway.store.org_tree import people_in_scope
from gateway.store.people import get_person

DESTINATION_MAX = 200
NOTE_MAX = 500


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """A plan or return as filed, the listed areas its destination matches, and what the
    evaluation changed (an isolation on a return from a listed area)."""

    declaration: dict[str, Any]
    matched_areas: list[str]
    evaluation: Evaluation


async def trips_need_approval(conn: asyncpg.Connection) -> bool:
    """Whether the campus-wide response level asks a liaison to approve planned trips."""
    definitions, active = await load_levels(conn)
    level = next((d for d in definitions if d.name == active.campus), None)
    return level is not None and level.rules.trips_need_approval


async def plan_trip(
    conn: asyncpg.Connection,
    person_id: str,
    destination: str,
    departure_date: date,
    return_date: date,
    note: str,
    rules: TravelRules,
    *,
    now: datetime,
) -> PlanOutcome:
    """File a trip the person plans (leaving today or later)."""
    destination = destination.strip()
    today = now.astimezone(rules.tz).date()
    if not destination or len(destination) > DESTINATION_MAX:
        raise InvalidValueError(
            f"give a destination of 1 to {DESTINATION_MAX} characters", "destination"
        )
    if len(note) > NOTE_MAX:
        raise InvalidValueError(f"the note is longer than {NOTE_MAX} characters", "note")
    if departure_date < today:
        raise InvalidValueError(
            "a plan is declared before leaving: for a trip already begun, declare your "
            "return when you are back, or ask your liaison",
            "departure_date",
        )
    if return_date < departure_date:
        raise InvalidValueError("the return date is before the departure date", "return_date")
    person = await get_person(conn, person_id)
    if person is None or not person.active:
        raise NotFoundError(f"no active person {person_id!r}")
    found = places.resolve(destination)
    approval = "pending" if await trips_need_approval(conn) else "not_needed"
    async with conn.transaction():
        declaration_id = await store.insert_plan(
            conn, person_id, destination, departure_date, return_date, note,
            found.codes, found.describe(), approval=approval,
        )  # fmt: skip
        if declaration_id is None:
            raise ConflictError("this trip is planned already")
        declaration = await store.lock_declaration(conn, declaration_id)
        assert declaration is not None
        await record_audit(
            conn, f"person:{person_id}", "plan_trip", "travel_declaration",
            str(declaration_id), after=_jsonable(declaration),
        )  # fmt: skip
        evaluation = await evaluate(conn, rules, by=f"person:{person_id}", person_ids=[person_id])
    return await _outcome(conn, declaration_id, evaluation)


async def declare_return(
    conn: asyncpg.Connection,
    person_id: str,
    declaration_id: int,
    return_date: date,
    rules: TravelRules,
    *,
    now: datetime,
) -> PlanOutcome:
    """The person is back: their trip's return date becomes the real one, and the trip is
    evaluated (a return from a listed area isolates them)."""
    today = now.astimezone(rules.tz).date()
    async with conn.transaction():
        before = await _own(conn, person_id, declaration_id)
        if not before["planned"]:
            # A trip an operator filed has its dates from them: the person may not move
            # them (its return date is when any isolation it causes begins and ends).
            raise ConflictError("this trip was filed for you: ask your liaison to correct it")
        if before["returned_at"] is not None:
            # Once back, the return date stands: declaring an earlier one would shorten
            # the isolation it began.
            raise ConflictError("your return is declared already: ask your liaison to correct it")
        if before["cancelled_at"] is not None:
            raise ConflictError("this plan was called off: plan the trip again")
        if return_date > today:
            raise InvalidValueError("declare the return once you are back", "return_date")
        if return_date < before["departure_date"]:
            raise InvalidValueError("the return date is before the departure date", "return_date")
        if not await store.record_return(conn, declaration_id, return_date):
            raise ConflictError("a trip with these dates is on file already")
        await record_audit(
            conn, f"person:{person_id}", "declare_return", "travel_declaration",
            str(declaration_id), before=_jsonable(before),
            after={"return_date": return_date.isoformat()},
        )  # fmt: skip
        evaluation = await evaluate(conn, rules, by=f"person:{person_id}", person_ids=[person_id])
    return await _outcome(conn, declaration_id, evaluation)


async def cancel_plan(
    conn: asyncpg.Connection,
    person_id: str,
    declaration_id: int,
    rules: TravelRules,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Call a plan off before leaving."""
    async with conn.transaction():
        before = await _own(conn, person_id, declaration_id)
        if not before["planned"] or before["returned_at"] is not None:
            raise ConflictError("only a plan not yet travelled can be called off")
        if before["departure_date"] < now.astimezone(rules.tz).date():
            raise ConflictError("the trip has begun: declare your return instead")
        if before["cancelled_at"] is None:
            await store.cancel_plan(conn, declaration_id)
            await record_audit(
                conn, f"person:{person_id}", "cancel_trip", "travel_declaration",
                str(declaration_id), before=_jsonable(before),
            )  # fmt: skip
        after = await store.lock_declaration(conn, declaration_id)
    assert after is not None
    return after


async def decide_plan(
    conn: asyncpg.Connection,
    declaration_id: int,
    *,
    approve: bool,
    note: str,
    by: str,
    rules: TravelRules,
    org_scope: str | None,
) -> PlanOutcome:
    """A liaison's (or admin's) answer to a plan waiting for approval."""
    async with conn.transaction():
        before = await store.lock_declaration(conn, declaration_id)
        if before is None or not await _in_scope(conn, before, org_scope):
            raise NotFoundError(f"no travel plan {declaration_id}")
        if before["approval"] != "pending" or before["cancelled_at"] is not None:
            raise ConflictError(f"plan {declaration_id} is not waiting for approval")
        approval = "approved" if approve else "refused"
        await store.decide_plan(conn, declaration_id, approval, by=by, note=note)
        await record_audit(
            conn, by, "approve_trip" if approve else "refuse_trip",
            "travel_declaration", str(declaration_id), before=_jsonable(before),
            after={"approval": approval, "note": note},
        )  # fmt: skip
        evaluation = await evaluate(conn, rules, by=by, person_ids=[before["person_id"]])
    return await _outcome(conn, declaration_id, evaluation)


async def _own(conn: asyncpg.Connection, person_id: str, declaration_id: int) -> dict[str, Any]:
    """The person's own trip, locked; anyone else's is "not found", as none would be."""
    found = await store.lock_declaration(conn, declaration_id)
    if found is None or found["person_id"] != person_id:
        raise NotFoundError(f"no trip {declaration_id} of yours")
    return found


async def _in_scope(
    conn: asyncpg.Connection, declaration: dict[str, Any], scope: str | None
) -> bool:
    if scope is None:
        return True
    found = await people_in_scope(conn, [declaration["person_id"]], scope)
    return found.get(declaration["person_id"], False)


async def _outcome(
    conn: asyncpg.Connection, declaration_id: int, evaluation: Evaluation
) -> PlanOutcome:
    declaration = await store.get_declaration(conn, declaration_id)
    assert declaration is not None
    trip = TravelDeclaration(
        declaration["id"], declaration["person_id"], declaration["destination"],
        declaration["departure_date"], declaration["return_date"],
        divisions=None if declaration["divisions"] is None else tuple(declaration["divisions"]),
    )  # fmt: skip
    areas = [a.name for a in matching_areas(trip, await store.load_areas(conn))]
    return PlanOutcome(declaration, areas, evaluation)
