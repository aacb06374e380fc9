"""Console login with a password, session cookie + CSRF token, logout, who am I."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import CSRF_COOKIE, SESSION_COOKIE, Conn, CurrentOperator
from api.permissions import permissions_of
from gateway.services.accounts import SESSION_LIFETIME, check_password, close_session, open_session

router = APIRouter(prefix="/api/auth", tags=["auth"])

MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0


MAX_TRACKED = 10_000  # (name, address) pairs kept before stale ones are swept


class LoginLimiter:
    """At most MAX_FAILURES failed logins per (name, client address) in FAILURE_WINDOW_S."""

    def __init__(self, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures[key]
        horizon = time.monotonic() - self.window_s
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures

    def blocked(self, key: tuple[str, str]) -> bool:
        if key not in self._failures:  # do not grow the table for every name tried
            return False
        recent = self._recent(key)
        if not recent:
            del self._failures[key]
        return len(recent) >= self.limit

    def fail(self, key: tuple[str, str]) -> None:
        self._recent(key).append(time.monotonic())
        if len(self._failures) > MAX_TRACKED:
            self._forget_stale()

    def _forget_stale(self) -> None:
        for key in list(self._failures):
            if not self._recent(key):
                del self._failures[key]

    def succeed(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    name: str
    role: str
    org_unit_id: str | None
    csrf_token: str | None = None
    permissions: list[str] = []  # what the console may offer this operator


@router.post("/login", response_model=Me)
async def login(body: Login, request: Request, response: Response, conn: Conn) -> Me:
    limiter: LoginLimiter = request.app.state.login_limiter
    key = (body.name, request.client.host if request.client else "?")
    if limiter.blocked(key):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; try again later"
        )
    account = await check_password(conn, body.name, body.password)
    if account is None:
        limiter.fail(key)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong name or password")
    limiter.succeed(key)
    token, session = await open_session(conn, account)
    secure = request.url.scheme == "https"
    max_age = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, session.csrf_token, max_age=max_age, samesite="strict", secure=secure
    )
    return Me(
        name=account.name,
        role=account.role.value,
        org_unit_id=account.org_unit_id,
        csrf_token=session.csrf_token,
        permissions=permissions_of(account.role),
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    operator: CurrentOperator, request: Request, response: Response, conn: Conn
) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await close_session(conn, cookie, operator.account)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.get("/me", response_model=Me)
async def me(operator: CurrentOperator, request: Request) -> Me:
    return Me(
        name=operator.account.name,
        role=operator.account.role.value,
        org_unit_id=operator.account.org_unit_id,
        csrf_token=request.cookies.get(CSRF_COOKIE) if operator.via == "session" else None,
        permissions=permissions_of(operator.account.role),
    )
