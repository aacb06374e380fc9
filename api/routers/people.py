"""People and their cards: search by name, id or card, with paging; one person."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import Allowed, Conn, Principal
from api.permissions import Permission, org_scoped, sees_health_details
from gateway.domain.health import HealthStatus
from gateway.store import console

router = APIRouter(prefix="/api/people", tags=["people"])
Reader = Allowed(Permission.READ_PEOPLE)

_HEALTH_KEYS = (
    "health_status",
    "health_since",
    "health_until",
    "health_reason",
    "health_caretaker",
)


def present(person: dict[str, Any], operator: Principal) -> dict[str, Any]:
    """A person as this operator may see them: without health details unless allowed."""
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


def scope_of(operator: Principal) -> str | None:
    """The org unit a liaison is confined to ('' when none is set: they see nobody)."""
    if not org_scoped(operator.account.role):
        return None
    return operator.account.org_unit_id or ""


@router.get("")
async def search_people(
    operator: Reader,
    conn: Conn,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    total, rows = await console.search_people(
        conn, q=q, org_scope=scope_of(operator), limit=limit, offset=offset
    )
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [present(r, operator) for r in rows],
    }


async def ensure_in_scope(conn: Conn, operator: Principal, person_id: str) -> None:
    """404 for unknown people and for people outside a liaison's org unit."""
    exists, org_unit = await console.person_org_unit(conn, person_id)
    scope = scope_of(operator)
    if exists and scope is not None:
        exists = bool(scope) and org_unit in await console.org_subtree(conn, scope)
    if not exists:
        raise HTTPException(404, f"no person {person_id!r}")


@router.get("/{person_id}")
async def get_person(person_id: str, operator: Reader, conn: Conn) -> dict[str, Any]:
    await ensure_in_scope(conn, operator, person_id)
    person = await console.get_person(conn, person_id)
    assert person is not None
    return present(person, operator)
