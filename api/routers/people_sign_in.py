"""People's sign-in to the mobile page: password (set from an invitation), CAS, sign-out.

Failures say as little as operators' logins do: a wrong id, a wrong password, a person
without a password and a deactivated person all get the same 401. A CAS callback is
accepted only in the browser that started that sign-in (api/cas_state.py), and always
ends on this site's own page: it takes no return address from the request.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from api.cas_state import (
    LIFETIME_S,
    LoginStateRefused,
    check_login_state,
    cookie_name,
    new_login_state,
)
from api.client_address import client_address
from api.deps import Conn
from api.person_auth import (
    PERSON_COOKIE,
    PERSON_CSRF_COOKIE,
    PersonPrincipal,
    current_person,
    person_session,
)
from gateway.services import person_accounts as people_accounts
from gateway.services.accounts import MIN_PASSWORD_LENGTH, LoginLimits, PasswordPolicyError
from gateway.services.cas import CasConfig, CasError, validate_ticket
from gateway.services.person_accounts import (
    PERSON_SESSION_LIFETIME,
    InactivePersonError,
    InvitationInvalidError,
    OpenedSession,
    UnknownPersonError,
)
from gateway.settings import Settings
from gateway.store.person_accounts import invitation_is_open, person_id_by_column

_LOGGER = logging.getLogger(__name__)
router = APIRouter(prefix="/api/person", tags=["people's sign-in"])
CurrentPerson = Annotated[PersonPrincipal, Depends(current_person)]
CAS_LOGIN = "/api/person/cas/login"
CAS_CALLBACK = "/api/person/cas/callback"
PAGE = "/me/"
# Shown when a callback is not the end of a sign-in this browser started (both languages
# of the page: this answer comes before the page and its language choice).
STATE_REFUSED_PAGE = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>登录未完成 / Sign-in not completed</title></head><body>
<h1>登录未完成 / Sign-in not completed</h1>
<p>这次统一身份认证不是在本浏览器中发起的，或发起已超过 {LIFETIME_S // 60} 分钟，因此没有登录。</p>
<p>This university sign-in was not started in this browser, or was started more than
{LIFETIME_S // 60} minutes ago, so you were not signed in.</p>
<p><a href="{CAS_LOGIN}">重新登录 / Sign in again</a></p>
</body></html>
"""


class SignInConfig(BaseModel):
    cas: bool
    min_password_length: int


class PasswordLogin(BaseModel):
    person_id: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)
    bearer: bool = False  # answer with a bearer token instead of setting the cookie


class SignedIn(BaseModel):
    person_id: str
    csrf_token: str
    expires_at: str
    token: str | None = None  # only when a bearer token was asked for


class InvitationToken(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class InvitationAccept(InvitationToken):
    password: str = Field(min_length=1, max_length=1000)


class InvitationState(BaseModel):
    valid: bool


class PasswordSet(BaseModel):
    person_id: str


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _base_url(request: Request) -> str:
    """Where people reach us: CAMPUSGATE_PUBLIC_URL (required with CAS: settings), else
    the request's own address (for invitations and cookies on a test bench)."""
    return _settings(request).public_url or str(request.base_url).rstrip("/")


def _cas(request: Request) -> CasConfig | None:
    settings = _settings(request)
    if not settings.cas_url:
        return None
    return CasConfig(
        settings.cas_url,
        settings.cas_version,
        settings.cas_user_attribute,
        settings.cas_person_field,
    )


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).public_url.startswith("https:")


def _service(request: Request, state: str) -> str:
    """The CAS service URL of one sign-in: tickets are sent back to it and validated for it."""
    return f"{_base_url(request)}{CAS_CALLBACK}?{urlencode({'state': state})}"


def _set_cookies(request: Request, response: Response, session: OpenedSession) -> None:
    secure = _secure(request)
    max_age = int(PERSON_SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        PERSON_COOKIE, session.token, max_age=max_age, httponly=True, samesite="strict",
        secure=secure, path="/",
    )  # fmt: skip
    response.set_cookie(
        PERSON_CSRF_COOKIE, session.csrf_token, max_age=max_age, samesite="strict",
        secure=secure, path="/",
    )  # fmt: skip


@router.get("/config", response_model=SignInConfig)
async def config(request: Request) -> SignInConfig:
    """What the sign-in screen offers (public)."""
    return SignInConfig(cas=_cas(request) is not None, min_password_length=MIN_PASSWORD_LENGTH)


@router.post("/login", response_model=SignedIn)
async def login(body: PasswordLogin, request: Request, response: Response, conn: Conn) -> SignedIn:
    settings = _settings(request)
    address = client_address(request.scope, settings.trusted_proxy_networks)
    limits = LoginLimits(settings.login_failures_per_name, settings.login_failures_per_address)
    account = await people_accounts.password_login(
        conn, body.person_id.strip(), body.password, address, limits
    )
    if account is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong person id or password")
    session = await people_accounts.open_session(conn, account, "password")
    if not body.bearer:
        _set_cookies(request, response, session)
    return SignedIn(
        person_id=account.person_id,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at.isoformat(),
        token=session.token if body.bearer else None,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(person: CurrentPerson, request: Request, response: Response, conn: Conn) -> None:
    found = await person_session(request)
    if found is not None:
        await people_accounts.close_session(conn, found[0], found[1].account)
    response.delete_cookie(PERSON_COOKIE, path="/")
    response.delete_cookie(PERSON_CSRF_COOKIE, path="/")


@router.post("/invitation/check", response_model=InvitationState)
async def check_invitation(body: InvitationToken, conn: Conn) -> InvitationState:
    """Whether an invitation link can still be used (the page asks before the password)."""
    return InvitationState(valid=await invitation_is_open(conn, body.token))


@router.post("/invitation/accept", response_model=PasswordSet)
async def accept_invitation(body: InvitationAccept, conn: Conn) -> PasswordSet:
    """Choose a password with an invitation; then sign in with person id and password."""
    try:
        account = await people_accounts.accept_invitation(conn, body.token, body.password)
    except PasswordPolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except InvitationInvalidError as exc:
        raise HTTPException(status.HTTP_410_GONE, str(exc)) from None
    return PasswordSet(person_id=account.person_id)


@router.get("/cas/login", include_in_schema=False)
async def cas_login(request: Request) -> RedirectResponse:
    """Send the browser to the CAS login page, bound to it by a one-time state cookie."""
    cas = _cas(request)
    if cas is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "CAS sign-in is not configured")
    login = new_login_state()
    response = RedirectResponse(cas.login_url(_service(request, login.state)), status_code=302)
    secure = _secure(request)
    response.set_cookie(
        cookie_name(secure), login.cookie, max_age=LIFETIME_S, httponly=True, samesite="lax",
        secure=secure, path="/",
    )  # fmt: skip
    return response


@router.get("/cas/callback", include_in_schema=False)
async def cas_callback(
    request: Request,
    conn: Conn,
    ticket: Annotated[str, Query(min_length=1, max_length=2000)],
    state: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Check the browser started this sign-in, validate the ticket with the CAS server,
    map its user to a person, sign them in. The state cookie is spent whatever happens."""
    cas = _cas(request)
    if cas is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "CAS sign-in is not configured")
    settings = _settings(request)
    address = client_address(request.scope, settings.trusted_proxy_networks)
    limits = LoginLimits(settings.login_failures_per_name, settings.login_failures_per_address)
    # Counted as a failure from here until it succeeds, the state check included.
    attempt = await people_accounts.start_cas_attempt(conn, address, limits)
    secure = _secure(request)
    name = cookie_name(secure)
    try:
        check_login_state(request.cookies.get(name), state)
    except LoginStateRefused as exc:
        # Before CAS is asked: a ticket brought to a browser that did not ask for it is
        # the login-CSRF this guards against, and it is not spent on the CAS server.
        _LOGGER.warning("CAS sign-in refused from %s: %s", address, exc)
        response: Response = HTMLResponse(STATE_REFUSED_PAGE, status.HTTP_403_FORBIDDEN)
    else:
        response = await _finish_cas(request, conn, cas, ticket, state, attempt)
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
    return response


async def _finish_cas(
    request: Request,
    conn: asyncpg.Connection,
    cas: CasConfig,
    ticket: str,
    state: str,
    attempt: int,
) -> RedirectResponse:
    try:
        user = await validate_ticket(cas, ticket, _service(request, state))
    except CasError as exc:
        _LOGGER.info("CAS sign-in refused: %s", exc)
        return RedirectResponse(f"{PAGE}#error=cas_ticket", status_code=302)
    identity = user.identity(cas.user_attribute)
    person_id = await person_id_by_column(conn, cas.person_field, identity) if identity else None
    if person_id is None:
        _LOGGER.info("CAS user %r is not in the roster", user.user)
        return RedirectResponse(f"{PAGE}#error=cas_unknown", status_code=302)
    try:
        account = await people_accounts.cas_account(conn, person_id)
    except (UnknownPersonError, InactivePersonError):
        return RedirectResponse(f"{PAGE}#error=cas_inactive", status_code=302)
    await people_accounts.cas_attempt_succeeded(conn, attempt)
    session = await people_accounts.open_session(conn, account, "cas")
    response = RedirectResponse(PAGE, status_code=302)
    _set_cookies(request, response, session)
    return response
