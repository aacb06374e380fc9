"""Administrators invite people to the mobile page and end their sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn
from api.permissions import Permission
from gateway.services import person_accounts as people_accounts
from gateway.services.person_accounts import InactivePersonError
from gateway.settings import Settings

router = APIRouter(prefix="/api/people", tags=["people"])


class InvitationRequest(BaseModel):
    days: int | None = Field(default=None, ge=1, le=90)  # default CAMPUSGATE_PERSON_INVITATION_DAYS


class Invitation(BaseModel):
    person_id: str
    link: str  # send this to the person; shown only in this answer
    expires_at: datetime


class SessionsEnded(BaseModel):
    ended: int


def invitation_link(base_url: str, token: str) -> str:
    """The link a person opens: the token rides in the fragment, so no server log sees it."""
    return f"{base_url.rstrip('/')}/me/#invite={token}"


@router.post(
    "/{person_id}/invitation", response_model=Invitation, status_code=status.HTTP_201_CREATED
)
async def invite(
    person_id: str,
    body: InvitationRequest,
    request: Request,
    operator: Allowed(Permission.WRITE_ROSTER),  # type: ignore[valid-type]
    conn: Conn,
) -> Invitation:
    """A one-time invitation link for the person (their earlier links stop working)."""
    settings: Settings = request.app.state.settings
    days = body.days or settings.person_invitation_days
    try:
        token, expires_at = await people_accounts.invite(
            conn, person_id, by=operator.name, lifetime=timedelta(days=days)
        )
    except InactivePersonError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    base = settings.public_url or str(request.base_url)
    return Invitation(person_id=person_id, link=invitation_link(base, token), expires_at=expires_at)


@router.post("/{person_id}/sessions/end", response_model=SessionsEnded)
async def end_sessions(
    person_id: str,
    operator: Allowed(Permission.WRITE_ROSTER),  # type: ignore[valid-type]
    conn: Conn,
) -> SessionsEnded:
    """Sign the person out everywhere (their password stays)."""
    ended = await people_accounts.end_person_sessions(conn, person_id, by=operator.name)
    return SessionsEnded(ended=ended)
