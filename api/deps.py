"""Request dependencies: the pool, the current operator (bearer token or session),
permissions, and the org unit a liaison is confined to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.permissions import Permission, allowed, org_scoped
from gateway.store.accounts import Account, account_for_token, session_for_token
from gateway.store.org_tree import people_in_scope

SESSION_COOKIE = "cg_session"
CSRF_COOKIE = "cg_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="API token from `campusgate user add`")


async def _connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        yield conn


Conn = Annotated[asyncpg.Connection, Depends(_connection)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The operator making a request, and how they proved it."""

    account: Account
    via: str  # "token" or "session"

    @property
    def name(self) -> str:
        return self.account.name


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(
    conn: asyncpg.Connection,
    token: str | None,
    session_cookie: str | None,
    idle: timedelta,
    *,
    touch: bool = True,
) -> tuple[Account, str, str | None] | None:
    """(account, via, csrf token) from a bearer token or a session cookie.

    Disabled operators, revoked or expired tokens, and sessions idle longer than `idle`
    are refused; `touch` keeps the session alive (a live stream's re-check does not).
    """
    if token:
        account = await account_for_token(conn, token)
        return (account, "token", None) if account else None
    if session_cookie:
        session = await session_for_token(conn, session_cookie, idle, touch=touch)
        return (session.account, "session", session.csrf_token) if session else None
    return None


def idle_timeout(app: object) -> timedelta:
    """The session idle timeout of this app (CAMPUSGATE_SESSION_IDLE_MINUTES)."""
    return timedelta(minutes=app.state.settings.session_idle_minutes)  # type: ignore[attr-defined]


async def current_operator(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    found = await authenticate(
        conn,
        credentials.credentials if credentials else None,
        request.cookies.get(SESSION_COOKIE),
        idle_timeout(request.app),
    )
    if found is None:
        raise _unauthorized("not logged in: send a bearer API token or log in")
    account, via, csrf = found
    if via == "session" and request.method not in _SAFE_METHODS:
        header = request.headers.get(CSRF_HEADER)
        if not header or header != csrf or header != request.cookies.get(CSRF_COOKIE):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return Principal(account, via)


CurrentOperator = Annotated[Principal, Depends(current_operator)]


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that lets through only operators whose role has `permission`."""

    async def check(operator: CurrentOperator) -> Principal:
        if not allowed(operator.account.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {operator.account.role.value} may not {permission.value.replace('_', ' ')}",
            )
        return operator

    return check


def Allowed(permission: Permission) -> type[Principal]:
    """`operator: Allowed(Permission.X)` in a route signature."""
    return Annotated[Principal, Depends(require(permission))]  # type: ignore[return-value]


def scope_of(operator: Principal) -> str | None:
    """The org unit a liaison is confined to ('' when none is set: they see nobody);
    None for roles that see the whole campus."""
    if not org_scoped(operator.account.role):
        return None
    return operator.account.org_unit_id or ""


async def _org_scope(operator: CurrentOperator) -> str | None:
    return scope_of(operator)


OrgScope = Annotated[str | None, Depends(_org_scope)]
"""`scope: OrgScope` in a route signature: the operator's org scope (see scope_of)."""


async def in_scope(conn: asyncpg.Connection, scope: str | None, person_id: str) -> bool:
    """Whether the person exists and, for a liaison, belongs to their org unit's subtree."""
    found = await people_in_scope(conn, [person_id], scope)
    return person_id in found and (scope is None or found[person_id])


async def ensure_in_scope(conn: asyncpg.Connection, scope: str | None, person_id: str) -> None:
    """404 for unknown people and for people outside a liaison's org unit."""
    if not await in_scope(conn, scope, person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person {person_id!r}")
