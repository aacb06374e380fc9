"""People's own accounts: invitations, passwords, sign-in and sessions.

Passwords are argon2-hashed on the operators' small hashing pool (services/accounts.py),
never on the event loop. Failed sign-ins go to the operators' lock-out table under the
name `person:<id>`, so one store counts both and a lock-out holds across API processes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.services.accounts import (
    LoginLimits,
    LoginThrottledError,
    hash_password,
    verify_password,
)
from gateway.services.errors import NotFoundError
from gateway.store import accounts as lockout
from gateway.store import person_accounts as store
from gateway.store.audit import record_audit
from gateway.store.person_accounts import PersonAccount

PERSON_SESSION_LIFETIME = timedelta(hours=12)
DEFAULT_INVITATION_LIFETIME = timedelta(days=7)

__all__ = ["LoginLimits", "LoginThrottledError"]


class UnknownPersonError(NotFoundError):
    """No person with that id."""


class InactivePersonError(ValueError):
    """The person is deactivated (or past their validity) and may not sign in."""


class InvitationInvalidError(ValueError):
    """The invitation token is unknown, used already, or expired."""


@dataclass(frozen=True, slots=True)
class OpenedSession:
    token: str
    csrf_token: str
    expires_at: datetime
    account: PersonAccount


def lockout_name(person_id: str) -> str:
    """The name people's failed sign-ins are counted under in the shared lock-out table."""
    return f"person:{person_id}"


async def invite(
    conn: asyncpg.Connection, person_id: str, *, by: str, lifetime: timedelta
) -> tuple[str, datetime]:
    """A new one-time invitation token for the person (their earlier ones stop working),
    and when it expires. Only its hash is stored; the token is shown once."""
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + lifetime
    async with conn.transaction():
        allowed = await store.person_may_sign_in(conn, person_id)
        if allowed is None:
            raise UnknownPersonError(f"no person {person_id!r}")
        if not allowed:
            raise InactivePersonError(f"person {person_id!r} is deactivated")
        account = await store.ensure_account(conn, person_id)
        await store.create_invitation(conn, account, token, expires_at, by)
        await record_audit(
            conn, by, "invite", "person", person_id, after={"expires_at": expires_at.isoformat()}
        )
    return token, expires_at


async def accept_invitation(conn: asyncpg.Connection, token: str, password: str) -> PersonAccount:
    """Set the password of the invitation's person and use the invitation up.

    A token that is not open is refused before any hashing; the password is hashed (a
    too-short one is refused before the token is spent); then the token is claimed in one
    statement, so a replayed or raced link fails. The
    person's other sessions end: whoever held the old password is signed out.
    """
    # A made-up token costs one lookup, not a password hash: hashing is the expensive
    # step, and this route answers anyone.
    if not await store.invitation_is_open(conn, token):
        raise InvitationInvalidError("the invitation link is not valid (used or expired)")
    hashed = await hash_password(password)
    async with conn.transaction():
        account = await store.claim_invitation(conn, token)
        if account is None:
            raise InvitationInvalidError("the invitation link is not valid (used or expired)")
        await store.set_password_hash(conn, account, hashed)
        ended = await store.end_sessions(conn, account.person_id)
        await record_audit(
            conn,
            account.person_id,
            "set_password",
            "person",
            account.person_id,
            after={"via": "invitation", "sessions_ended": ended},
        )
    return account


async def password_login(
    conn: asyncpg.Connection, person_id: str, password: str, address: str, limits: LoginLimits
) -> PersonAccount | None:
    """Check a person's sign-in, counted in the shared lock-out like operators' logins.

    Raises LoginThrottledError when the person or the address failed too often within the
    window; None for a wrong id or password (or a deactivated person); the account otherwise.
    """
    name = lockout_name(person_id)
    attempt = await lockout.record_login_failure(conn, name, address)
    per_name, per_address = await lockout.recent_login_failures(conn, name, address, limits.window)
    if per_name > limits.per_name or per_address > limits.per_address:
        await lockout.forget_login_failure(conn, attempt)
        raise LoginThrottledError("too many failed sign-ins; try again later")
    found = await store.account_with_password(conn, person_id)
    ok = await verify_password(found[1] if found else None, password)
    if not ok or found is None:
        await lockout.forget_login_failures(conn, limits.window)
        return None
    await lockout.clear_login_failures(conn, name, address)
    return found[0]


CAS_LOCKOUT_NAME = "person:cas"


async def start_cas_attempt(conn: asyncpg.Connection, address: str, limits: LoginLimits) -> int:
    """Count a CAS callback from `address` as failed until it succeeds; raise
    LoginThrottledError when that address failed too often (so a flood of made-up tickets
    is not passed on to the university's CAS server)."""
    attempt = await lockout.record_login_failure(conn, CAS_LOCKOUT_NAME, address)
    _, per_address = await lockout.recent_login_failures(
        conn, CAS_LOCKOUT_NAME, address, limits.window
    )
    if per_address > limits.per_address:
        await lockout.forget_login_failure(conn, attempt)
        raise LoginThrottledError("too many failed sign-ins; try again later")
    return attempt


async def cas_attempt_succeeded(conn: asyncpg.Connection, attempt: int) -> None:
    await lockout.forget_login_failure(conn, attempt)


async def cas_account(conn: asyncpg.Connection, person_id: str) -> PersonAccount:
    """The account of a person CAS vouched for (created at first sign-in)."""
    allowed = await store.person_may_sign_in(conn, person_id)
    if allowed is None:
        raise UnknownPersonError(f"no person {person_id!r}")
    if not allowed:
        raise InactivePersonError(f"person {person_id!r} is deactivated")
    return await store.ensure_account(conn, person_id)


async def open_session(conn: asyncpg.Connection, account: PersonAccount, via: str) -> OpenedSession:
    """A new session for the person (cookie or bearer value, CSRF token), audited."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + PERSON_SESSION_LIFETIME
    await store.create_session(conn, account, token, csrf, via, expires)
    await record_audit(
        conn, account.person_id, "sign_in", "person_session", account.person_id, after={"via": via}
    )
    return OpenedSession(token, csrf, expires, account)


async def close_session(conn: asyncpg.Connection, token: str, account: PersonAccount) -> None:
    await store.delete_session(conn, token)
    await record_audit(conn, account.person_id, "sign_out", "person_session", account.person_id)


async def end_person_sessions(conn: asyncpg.Connection, person_id: str, *, by: str) -> int:
    """End every session of the person (audited); how many there were."""
    async with conn.transaction():
        ended = await store.end_sessions(conn, person_id)
        await record_audit(
            conn, by, "end_sessions", "person", person_id, after={"sessions_ended": ended}
        )
    return ended
