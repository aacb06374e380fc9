"""Caretakers and the people in their care, with the day of isolation each is on.

Health officers, admins and liaisons (READ_CARETAKING; liaisons only for people of
their org unit). No health reasons here. Phone numbers are masked unless an operator
with UNMASK asks for them (`unmask=true`), which is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.care_views import case_view, contact_of, contact_view
from api.deps import Allowed, Conn, OrgScope, Principal
from api.permissions import Permission, allowed
from api.schemas.caretakers import (
    CareContactIn,
    CareContactOut,
    CaretakerCase,
    CaretakerLoad,
    CaseContacts,
    FollowUpCase,
)
from gateway.domain.care import FollowUp
from gateway.domain.health import isolation_day
from gateway.domain.privacy import mask_phone
from gateway.services.care_followup import case_contacts, follow_ups, record_care_contact
from gateway.store.audit import record_audit
from gateway.store.caretaking import caretaker_cases

router = APIRouter(prefix="/api/caretakers", tags=["caretakers"])
Reader = Allowed(Permission.READ_CARETAKING)
HealthReader = Allowed(Permission.READ_HEALTH)  # contacts carry how the person is
HealthWriter = Allowed(Permission.WRITE_HEALTH)
Unmask = Annotated[bool, Query(description="full phone numbers (UNMASK only; audited)")]


async def _cases(
    request: Request,
    conn: Conn,
    operator: Principal,
    scope: str | None,
    caretaker_id: str | None,
    unmask: bool,
) -> list[dict[str, Any]]:
    if unmask and not allowed(operator.account.role, Permission.UNMASK):
        raise HTTPException(403, f"role {operator.account.role.value} may not unmask")
    now = datetime.now(UTC)
    tz = request.app.state.settings.tz
    cases = await caretaker_cases(conn, now, caretaker_id=caretaker_id, org_scope=scope)
    for case in cases:
        case["day"] = isolation_day(case["since"], now, tz)
        if not unmask:
            case["phone"] = mask_phone(case["phone"])
    if unmask:
        await record_audit(
            conn,
            operator.name,
            "unmask",
            "caretaker_cases",
            caretaker_id,
            after={"people": [c["person_id"] for c in cases]},
        )
    return cases


@router.get("", response_model=list[CaretakerLoad])
async def list_caretakers(
    request: Request, operator: Reader, scope: OrgScope, conn: Conn
) -> list[dict[str, Any]]:
    """Every caretaker with current cases, with their count; `unassigned` people last
    (caretaker_id null) so nobody in isolation is forgotten."""
    summary: dict[str | None, dict[str, Any]] = {}
    for case in await _cases(request, conn, operator, scope, None, False):
        entry = summary.setdefault(
            case["caretaker_id"],
            {
                "caretaker_id": case["caretaker_id"],
                "caretaker_name": case["caretaker_name"],
                "cases": 0,
                "longest_day": 0,
            },
        )
        entry["cases"] += 1
        entry["longest_day"] = max(entry["longest_day"], case["day"])
    return list(summary.values())


@router.get("/cases", response_model=list[CaretakerCase])
async def all_cases(
    request: Request, operator: Reader, scope: OrgScope, conn: Conn, unmask: Unmask = False
) -> list[dict[str, Any]]:
    """All current isolation cases with their caretaker and day of isolation."""
    return await _cases(request, conn, operator, scope, None, unmask)


@router.get("/{caretaker_id}/cases", response_model=list[CaretakerCase])
async def cases_of(
    caretaker_id: str,
    request: Request,
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    unmask: Unmask = False,
) -> list[dict[str, Any]]:
    """The people in one caretaker's care (an empty list for a caretaker with none)."""
    return await _cases(request, conn, operator, scope, caretaker_id, unmask)


@router.get("/follow-up", response_model=list[FollowUpCase])
async def follow_up_list(
    request: Request,
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    flagged: Annotated[
        FollowUp | None,
        Query(
            description="only cases gone quiet long enough to be flagged to this audience "
            "(`health_officer`: two days without contact; `caretaker`: one or more)"
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """Current isolation cases with their last recorded contact and whether they have
    gone quiet (`follow_up`), so nobody in isolation goes a day without a call."""
    now = datetime.now(UTC)
    tz = request.app.state.settings.tz
    cases = await follow_ups(conn, now, at_least=flagged, org_scope=scope)
    return [case_view(c, now, tz) for c in cases]


@router.get("/cases/{person_id}/contacts", response_model=CaseContacts)
async def contacts_list(
    person_id: str, request: Request, operator: HealthReader, conn: Conn
) -> dict[str, Any]:
    """A case's recorded contacts since it began (health data: health officers, admins)."""
    now = datetime.now(UTC)
    case, contacts = await case_contacts(conn, person_id, now=now)
    return {
        "case": case_view(case, now, request.app.state.settings.tz),
        "contacts": [contact_view(c) for c in contacts],
    }


@router.post("/cases/{person_id}/contacts", response_model=CareContactOut, status_code=201)
async def contact_record(
    person_id: str, body: CareContactIn, operator: HealthWriter, conn: Conn
) -> dict[str, Any]:
    """Record a contact with a person in isolation on the caretaker's behalf (e.g. a
    health officer's own call); audited."""
    now = datetime.now(UTC)
    recorded = await record_care_contact(
        conn, person_id, contact_of(body, now), by=operator.name, now=now
    )
    return contact_view(recorded)
