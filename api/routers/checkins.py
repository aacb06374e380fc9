"""Check-ins for operators (issue #15): a unit's rate and missing list (liaisons, in
their org scope), the case-contact review list (health officers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Allowed, Conn, OrgScope
from api.permissions import Permission
from gateway.services import checkin as service
from gateway.services.checkin_followup import unit_status

router = APIRouter(prefix="/api/checkins", tags=["check-in"])
Reader = Allowed(Permission.READ_PEOPLE)
HealthReader = Allowed(Permission.READ_HEALTH)
HealthWriter = Allowed(Permission.WRITE_HEALTH)


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")


@router.get("/today")
async def today(_: Reader, scope: OrgScope, conn: Conn, request: Request) -> dict[str, Any]:
    """Today's check-in rate and who has not checked in: a liaison's own unit and below,
    the whole campus for other roles. Names only: no health details."""
    return await unit_status(conn, request.app.state.settings, scope, datetime.now(UTC))


@router.get("/contact-reviews")
async def contact_reviews(
    _: HealthReader,
    conn: Conn,
    open_only: Annotated[bool, Query(alias="open")] = True,
) -> list[dict[str, Any]]:
    """People who reported contact with a confirmed case, open reviews first."""
    return await service.contact_reviews(conn, open_only=open_only)


@router.post("/contact-reviews/{review_id}/resolve")
async def resolve(
    review_id: Annotated[int, Path(ge=1, le=2**62)],
    body: Resolution,
    operator: HealthWriter,
    conn: Conn,
) -> dict[str, Any]:
    """Close a review with what the officer found or did (audited)."""
    return await service.resolve_contact_review(
        conn, review_id, by=operator.name, outcome=body.outcome, now=datetime.now(UTC)
    )
