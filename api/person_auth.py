"""Who the person behind a request is: the dependency every /api/me route uses.

People (students and staff of the roster) sign in to the mobile page with their own
session: the `cg_person` cookie or `Authorization: Bearer <person token>`. Person tokens
live in their own table, so a person's token never passes the operator check
(api/deps.py) and an operator's token or cookie never passes this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from fastapi import HTTPException, Request, status

from gateway.store.person_accounts import PersonSession, session_for_token

PERSON_COOKIE = "cg_person"
PERSON_CSRF_COOKIE = "cg_person_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class PersonPrincipal:
    person_id: str
    account_id: int


def person_idle_timeout(request: Request) -> timedelta:
    """CAMPUSGATE_PERSON_SESSION_IDLE_MINUTES of this app."""
    return timedelta(minutes=request.app.state.settings.person_session_idle_minutes)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def person_session(request: Request) -> tuple[str, PersonSession] | None:
    """(the token presented, its live session) of the request, or None."""
    bearer = _bearer(request)
    token = bearer or request.cookies.get(PERSON_COOKIE)
    if not token:
        return None
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        session = await session_for_token(conn, token, person_idle_timeout(request))
    if session is None:
        return None
    if bearer is None and request.method not in _SAFE_METHODS:
        # The cookie rides along on any request the browser makes; a header it does not add
        # by itself shows the page's own script sent it.
        header = request.headers.get(CSRF_HEADER)
        if not header or header != session.csrf_token:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return token, session


async def current_person(request: Request) -> PersonPrincipal:
    """The signed-in person (FastAPI dependency); 401 when not signed in."""
    found = await person_session(request)
    if found is None:
        raise _unauthorized("not signed in: sign in on the mobile page /me/")
    account = found[1].account
    return PersonPrincipal(account.person_id, account.id)
