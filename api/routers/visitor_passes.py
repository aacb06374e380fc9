"""Visitor passes (issue 15, point 5): hosts request them (api/routers/my_visitor_passes.py;
admins here for a host), the host's liaison or an admin approves, refuses or revokes.
Phone and ID number are masked unless an UNMASK operator asks (audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn, OrgScope, Principal
from api.permissions import Permission, allowed
from api.schemas.visitor_passes import VisitorPass, VisitorQr
from api.visitor_qr import fetch_qr
from gateway.domain.privacy import mask_id_number, mask_phone
from gateway.services import visitor_passes as service
from gateway.store import visitor_passes as store
from gateway.store.audit import record_audit

router = APIRouter(prefix="/api/visitor-passes", tags=["visitor passes"])
Decider = Allowed(Permission.DECIDE_VISITOR_PASSES)
Admin = Allowed(Permission.WRITE_ROSTER)

# Text of people: something not all whitespace, no control characters.
TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
ZONE_ID = r"^[^\x00-\x1f\x7f]{1,200}$"


class PassIn(BaseModel):
    """A request for a visitor pass (campus time: give times with their offset)."""

    visitor_name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    phone: str = Field(min_length=3, max_length=40)
    id_number: str = Field(min_length=4, max_length=40)
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT)
    zones: list[Annotated[str, Field(pattern=ZONE_ID)]] = Field(min_length=1, max_length=20)
    starts_at: datetime
    ends_at: datetime
    places: list[Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]] = Field(
        default_factory=list, max_length=30, description="where the visitor was in 14 days"
    )


class HostPassIn(PassIn):
    host_id: str = Field(min_length=1, max_length=200)


class DecisionIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    accept_area_match: bool = False


class RefusalIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000, pattern=TEXT)


def to_request(body: PassIn, host_id: str) -> service.PassRequest:
    return service.PassRequest(
        host_id=host_id,
        visitor_name=body.visitor_name.strip(),
        phone=body.phone,
        id_number=body.id_number,
        reason=body.reason.strip(),
        zones=tuple(body.zones),
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        places=tuple(p.strip() for p in body.places),
    )


def present(row: dict[str, Any], *, unmasked: bool = False) -> dict[str, Any]:
    shown = dict(row)
    if not unmasked:
        shown["phone"] = mask_phone(row["phone"])
        shown["id_number"] = mask_id_number(row["id_number"])
    shown["contact_masked"] = not unmasked
    shown["qr_available"] = row["status"] == "approved"
    return shown


def rules_of(request: Request) -> service.PassRules:
    return service.PassRules(request.app.state.settings.visitor_pass_max_days)


async def request_for(
    conn: Conn, request: Request, body: PassIn, host_id: str, *, by: str
) -> dict[str, Any]:
    row = await service.request_pass(
        conn,
        to_request(body, host_id),
        rules_of(request),
        by=by,
        now=datetime.now(UTC),
        tz=request.app.state.settings.tz,
    )
    return present(row)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=VisitorPass)
async def request_pass(
    body: HostPassIn, operator: Admin, conn: Conn, request: Request
) -> dict[str, Any]:
    """An admin requests a pass on a host's behalf (the host must be active staff)."""
    return await request_for(conn, request, body, body.host_id, by=operator.name)


@router.get("", response_model=list[VisitorPass])
async def list_passes(
    operator: Decider,
    scope: OrgScope,
    conn: Conn,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(pending|approved|refused|revoked)$")
    ] = None,
    host_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Passes newest first; a liaison sees those of hosts in their org unit and below."""
    rows = await store.list_passes(
        conn, status=status_, host_id=host_id, org_scope=scope, limit=limit, offset=offset
    )
    return [present(r) for r in rows]


async def _unmasked(conn: Conn, operator: Principal, pass_id: int, unmask: bool) -> bool:
    if not unmask:
        return False
    if not allowed(operator.account.role, Permission.UNMASK):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {operator.account.role.value} may not unmask"
        )
    await record_audit(
        conn, operator.name, "unmask", "visitor_pass", str(pass_id),
        after={"fields": ["phone", "id_number"]},
    )  # fmt: skip
    return True


@router.get("/{pass_id}", response_model=VisitorPass)
async def get_pass(
    pass_id: int,
    operator: Decider,
    scope: OrgScope,
    conn: Conn,
    unmask: Annotated[
        bool, Query(description="full phone and ID number (UNMASK; audited)")
    ] = False,
) -> dict[str, Any]:
    row = await service.pass_in_scope(conn, pass_id, scope)
    return present(row, unmasked=await _unmasked(conn, operator, pass_id, unmask))


@router.post("/{pass_id}/approve", response_model=VisitorPass)
async def approve(
    pass_id: int, body: DecisionIn, operator: Decider, scope: OrgScope, conn: Conn
) -> dict[str, Any]:
    """Approve: the visitor, a card and grants for the pass's zones within its window go
    into the roster (the doors know them within a second). A pass whose places matched
    an epidemic area is refused (409) unless `accept_area_match` and a note are given.
    A pass naming a `lab` zone needs an admin (WRITE_GRANTS; 403 for a liaison), and no
    one approves a pass they host (403)."""
    row = await service.approve(
        conn,
        pass_id,
        scope,
        by=operator.name,
        note=body.note,
        accept_area_match=body.accept_area_match,
        may_open_labs=allowed(operator.account.role, Permission.WRITE_GRANTS),
    )
    return present(row)


@router.post("/{pass_id}/refuse", response_model=VisitorPass)
async def refuse(
    pass_id: int, body: RefusalIn, operator: Decider, scope: OrgScope, conn: Conn
) -> dict[str, Any]:
    return present(await service.refuse(conn, pass_id, scope, by=operator.name, note=body.note))


@router.post("/{pass_id}/revoke", response_model=VisitorPass)
async def revoke(
    pass_id: int, body: DecisionIn, operator: Decider, scope: OrgScope, conn: Conn
) -> dict[str, Any]:
    """Revoke: the visitor's card is revoked (doors answer card_revoked)."""
    return present(await service.revoke(conn, pass_id, scope, by=operator.name, note=body.note))


@router.get("/{pass_id}/qr", response_model=VisitorQr)
async def qr(
    pass_id: int, operator: Decider, scope: OrgScope, conn: Conn, request: Request
) -> dict[str, Any]:
    """The pass's QR token (text to render as a QR code); approved passes only (409).
    Each fetch is audited (`fetch_qr`): the token opens doors."""
    row = await service.pass_in_scope(conn, pass_id, scope)
    return await fetch_qr(conn, request, row, by=operator.name)
