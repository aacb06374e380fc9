"""A caretaker's own follow-up, from their phone: the people in their care, and each
contact they record ("by network and phone", or a visit).

A caretaker is staff signed in as a person (not an operator); they see only the cases
assigned to them, with full phone numbers (they must call), and nobody else's: a case
not in their care answers 404, the same as no case at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.care_views import case_view, contact_of, contact_view
from api.deps import Conn
from api.person_auth import PersonPrincipal, current_person
from api.schemas.caretakers import CareContactIn, CareContactOut, CaseContacts, FollowUpCase
from gateway.services.care_followup import case_contacts, follow_ups, record_care_contact

router = APIRouter(prefix="/api/me/care", tags=["me"])
Me = Annotated[PersonPrincipal, Depends(current_person)]


class _Phone(FollowUpCase):
    phone: str | None


@router.get("", response_model=list[_Phone])
async def my_cases(request: Request, me: Me, conn: Conn) -> list[dict[str, Any]]:
    """The people in my care, the quiet ones flagged (`follow_up`)."""
    now = datetime.now(UTC)
    cases = await follow_ups(conn, now, caretaker=me.person_id)
    return [case_view(c, now, request.app.state.settings.tz) for c in cases]


@router.get("/{person_id}/contacts", response_model=CaseContacts)
async def my_case_contacts(person_id: str, request: Request, me: Me, conn: Conn) -> dict[str, Any]:
    """The contacts recorded with one person in my care."""
    now = datetime.now(UTC)
    case, contacts = await case_contacts(conn, person_id, now=now, caretaker=me.person_id)
    return {
        "case": case_view(case, now, request.app.state.settings.tz),
        "contacts": [contact_view(c) for c in contacts],
    }


@router.post("/{person_id}/contacts", response_model=CareContactOut, status_code=201)
async def record_my_contact(
    person_id: str, body: CareContactIn, me: Me, conn: Conn
) -> dict[str, Any]:
    """Record a contact with one person in my care."""
    now = datetime.now(UTC)
    recorded = await record_care_contact(
        conn,
        person_id,
        contact_of(body, now),
        by=f"person:{me.person_id}",
        now=now,
        caretaker=me.person_id,
    )
    return contact_view(recorded)
