"""Console login with a password, session cookie + CSRF token, logout, who am I."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from api.client_address import client_address
from api.deps import CSRF_COOKIE, SESSION_COOKIE, Conn, CurrentOperator
from api.permissions import permissions_of
from gateway.services.accounts import (
    SESSION_LIFETIME,
    LoginLimits,
    close_session,
    open_session,
)
from gateway.services.accounts import login as check_login
from gateway.settings import Settings

router = APIRouter(prefix="/api/auth", tags=["auth"])


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
    settings: Settings = request.app.state.settings
    address = client_address(request.scope, settings.trusted_proxy_networks)
    limits = LoginLimits(settings.login_failures_per_name, settings.login_failures_per_address)
    account = await check_login(conn, body.name, body.password, address, limits)
    if account is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong name or password")
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
