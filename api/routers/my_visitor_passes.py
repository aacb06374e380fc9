"""A signed-in person's own visitor passes: a staff host requests and lists them, and
fetches an approved pass's QR token to send to the visitor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from api.deps import Conn
from api.person_auth import PersonPrincipal, current_person
from api.routers.visitor_passes import PassIn, present, request_for
from api.schemas.visitor_passes import VisitorPass, VisitorQr
from api.visitor_qr import fetch_qr
from gateway.services.errors import NotFoundError
from gateway.store import visitor_passes as store

router = APIRouter(prefix="/api/me/visitor-passes", tags=["visitor passes"])
Me = Annotated[PersonPrincipal, Depends(current_person)]
ACTOR = "person:{}"  # how a person's own requests appear in the audit log


@router.post("", status_code=status.HTTP_201_CREATED, response_model=VisitorPass)
async def request_pass(body: PassIn, me: Me, conn: Conn, request: Request) -> dict[str, Any]:
    """Request a pass as its host (active staff only); a liaison or an admin decides."""
    return await request_for(conn, request, body, me.person_id, by=ACTOR.format(me.person_id))


@router.get("", response_model=list[VisitorPass])
async def my_passes(me: Me, conn: Conn) -> list[dict[str, Any]]:
    rows = await store.list_passes(
        conn, status=None, host_id=me.person_id, org_scope=None, limit=500, offset=0
    )
    return [present(r) for r in rows]


@router.get("/{pass_id}/qr", response_model=VisitorQr)
async def my_qr(pass_id: int, me: Me, conn: Conn, request: Request) -> dict[str, Any]:
    row = await store.get_pass(conn, pass_id)
    if row is None or row["host_id"] != me.person_id:
        raise NotFoundError(f"no visitor pass {pass_id}")
    return await fetch_qr(conn, request, row, by=ACTOR.format(me.person_id))
