"""People and their cards: search by name, id or card, with paging; one person.

Administrators create and update people, deactivate them, give and revoke cards
(audited; the gateways reload on the roster NOTIFY).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.deps import Allowed, Conn, OrgScope, Principal, ensure_in_scope
from api.permissions import Permission, allowed, sees_health_details
from api.roster import Admin, CardIn, PersonIn, PersonPatch, changes, values_of
from api.schemas.people import PeoplePage, PersonView
from gateway.domain.cards import CardUidError, normalize_card_uid
from gateway.domain.health import HealthStatus
from gateway.domain.privacy import mask_id_number, mask_phone
from gateway.services import roster_admin
from gateway.store import people
from gateway.store.audit import record_audit

router = APIRouter(prefix="/api/people", tags=["people"])
Reader = Allowed(Permission.READ_PEOPLE)

_HEALTH_KEYS = (
    "health_status",
    "health_since",
    "health_until",
    "health_reason",
    "health_caretaker",
)


def present(
    person: dict[str, Any], operator: Principal, *, unmasked: bool = False
) -> dict[str, Any]:
    """A person as this operator may see them: without health details unless allowed,
    phone and ID number masked unless `unmasked` (checked and audited by the caller)."""
    if not unmasked:
        person["phone"] = mask_phone(person.get("phone"))
        person["id_number"] = mask_id_number(person.get("id_number"))
    person["contact_masked"] = not unmasked
    status = person.get("health_status")
    person["health_hold"] = (
        bool(status)
        and HealthStatus(status).blocks_entry
        and (person.get("health_until") is None or _future(person["health_until"]))
    )
    if not sees_health_details(operator.account.role):
        for key in _HEALTH_KEYS:
            person.pop(key, None)
    return person


def _future(when: Any) -> bool:
    from datetime import UTC, datetime

    return when > datetime.now(UTC)


@router.get("", response_model=PeoplePage)
async def search_people(
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    total, rows = await people.search_people(conn, q=q, org_scope=scope, limit=limit, offset=offset)
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [present(asdict(r), operator) for r in rows],
    }


@router.get("/{person_id}", response_model=PersonView)
async def get_person(
    person_id: str,
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    unmask: Annotated[
        bool, Query(description="full phone and ID number (UNMASK only; audited)")
    ] = False,
) -> dict[str, Any]:
    await ensure_in_scope(conn, scope, person_id)
    if unmask and not allowed(operator.account.role, Permission.UNMASK):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {operator.account.role.value} may not unmask"
        )
    found = await people.get_person(conn, person_id)
    assert found is not None
    person = asdict(found)
    if unmask:
        # Who saw whose what, and when (the entry's ts); never the values themselves.
        shown = [f for f in ("phone", "id_number") if person.get(f)]
        await record_audit(
            conn, operator.name, "unmask", "person", person_id, after={"fields": shown}
        )
    return present(person, operator, unmasked=unmask)


async def _person(conn: Conn, person_id: str, operator: Principal) -> dict[str, Any]:
    found = await people.get_person(conn, person_id)
    assert found is not None
    return present(asdict(found), operator)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PersonView)
async def create_person(body: PersonIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    values = values_of(body, exclude={"cards"})
    await roster_admin.create(conn, "person", values, by=operator.name, cards=body.cards)
    return await _person(conn, body.id, operator)


@router.patch("/{person_id}", response_model=PersonView)
async def update_person(
    person_id: str, body: PersonPatch, operator: Admin, conn: Conn
) -> dict[str, Any]:
    await roster_admin.update(conn, "person", person_id, changes(body), by=operator.name)
    return await _person(conn, person_id, operator)


@router.post("/{person_id}/deactivate", response_model=PersonView)
async def deactivate_person(person_id: str, operator: Admin, conn: Conn) -> dict[str, Any]:
    await roster_admin.deactivate_person(conn, person_id, by=operator.name)
    return await _person(conn, person_id, operator)


@router.post("/{person_id}/cards")
async def add_card(person_id: str, body: CardIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    """Give a card to a person (or renew it); 409 when another person holds it."""
    return await roster_admin.add_card(
        conn, person_id, body.uid, by=operator.name, valid_until=body.valid_until
    )


@router.post("/{person_id}/cards/{uid}/revoke")
async def revoke_card(
    person_id: str,
    uid: Annotated[str, Path(max_length=64)],
    operator: Admin,
    conn: Conn,
) -> dict[str, Any]:
    try:
        canonical = normalize_card_uid(uid)
    except CardUidError as exc:
        raise HTTPException(
            422, [{"loc": ["path", "uid"], "msg": str(exc), "type": "card_uid"}]
        ) from None
    return await roster_admin.revoke_card(conn, canonical, by=operator.name, person_id=person_id)
