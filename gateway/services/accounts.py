"""Operator passwords (argon2), console sessions, lock-out and cutting operators off.

Shared by the API and the CLI. Hashing runs on a small thread pool of its own, never on
the event loop: a flood of logins queues there instead of stalling whatever else the loop
serves, and it cannot take more than its few threads' worth of CPU.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.store import accounts
from gateway.store.accounts import Account, Session
from gateway.store.audit import record_audit
from gateway.store.operators import hash_token

_T = TypeVar("_T")
MIN_PASSWORD_LENGTH = 8
SESSION_LIFETIME = timedelta(hours=12)

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
# At most this many hashes at once, whatever the number of logins waiting.
HASH_THREADS = max(1, min(2, (os.cpu_count() or 2) // 2))
_HASH_POOL = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="argon2")


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed within `window` per name (any address) and per address (any name)."""

    per_name: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=5)


class PasswordPolicyError(ValueError):
    """The password is too weak to set."""


class UnknownOperatorError(LookupError):
    """No operator has that name."""


class LoginThrottledError(RuntimeError):
    """Too many failed logins for this name or from this address."""


async def _off_loop(func: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, func, *args)


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    """The argon2 hash of `password`, computed off the event loop."""
    return await _off_loop(_hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def set_password(conn: asyncpg.Connection, name: str, password: str, *, by: str) -> None:
    """Set operator `name`'s console password and end its sessions (audited; the hash is
    never logged). Ending the sessions also closes its live streams (operator NOTIFY)."""
    hashed = await hash_password(password)
    async with conn.transaction():
        if not await accounts.set_password_hash(conn, name, hashed):
            raise UnknownOperatorError(f"no operator named {name!r}")
        ended = await accounts.end_sessions(conn, name)
        await record_audit(
            conn, by, "set_password", "operator", name, after={"sessions_ended": ended}
        )


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the argon2 hash `stored`, checked off the event loop;
    with no hash it is checked against a dummy one, so that costs as long and fails."""
    ok = await _off_loop(_verify, stored or _DUMMY_HASH, password)
    return ok and stored is not None


async def check_password(conn: asyncpg.Connection, name: str, password: str) -> Account | None:
    """The enabled operator when `password` is theirs; None otherwise (same cost either way)."""
    found = await accounts.account_with_password(conn, name)
    stored = found[1] if found else None
    ok = await _off_loop(_verify, stored or _DUMMY_HASH, password)
    if not ok or found is None or stored is None:
        return None
    return found[0]


async def login(
    conn: asyncpg.Connection, name: str, password: str, address: str, limits: LoginLimits
) -> Account | None:
    """Check a console login against the lock-out kept in the database.

    The attempt is counted as a failure before the password is checked, so a burst of
    parallel guesses is counted as it arrives, not once each slow hash is done. Raises
    LoginThrottledError when the name or the address has failed too often within the
    window (the attempt is then not counted, and no password is checked); returns None
    for a wrong name or password, the account otherwise (its failures from that address
    are forgotten).
    """
    attempt = await accounts.record_login_failure(conn, name, address)
    per_name, per_address = await accounts.recent_login_failures(conn, name, address, limits.window)
    if per_name > limits.per_name or per_address > limits.per_address:
        await accounts.forget_login_failure(conn, attempt)
        raise LoginThrottledError("too many failed logins; try again later")
    account = await check_password(conn, name, password)
    if account is None:
        await accounts.forget_login_failures(conn, limits.window)
        return None
    await accounts.clear_login_failures(conn, name, address)
    return account


async def open_session(conn: asyncpg.Connection, account: Account) -> tuple[str, Session]:
    """A new session for the account: (cookie value, session with its CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + SESSION_LIFETIME
    await accounts.create_session(conn, account, token, csrf, expires)
    await record_audit(conn, account.name, "login", "session", account.name)
    return token, Session(account, csrf, expires)


async def close_session(conn: asyncpg.Connection, token: str, account: Account) -> None:
    await accounts.delete_session(conn, token)
    await record_audit(conn, account.name, "logout", "session", account.name)


async def _state_or_fail(conn: asyncpg.Connection, name: str) -> dict[str, object]:
    state = await accounts.operator_state(conn, name)
    if state is None:
        raise UnknownOperatorError(f"no operator named {name!r}")
    return state


async def disable_operator(conn: asyncpg.Connection, name: str, *, by: str) -> int:
    """Disable operator `name`: its token, password and sessions stop working at once,
    and its live streams close. Returns how many sessions were ended."""
    async with conn.transaction():
        before = await _state_or_fail(conn, name)
        await accounts.set_disabled(conn, name, True)
        ended = await accounts.end_sessions(conn, name)
        after = await accounts.operator_state(conn, name)
        await record_audit(
            conn, by, "disable", "operator", name, before=before,
            after={**(after or {}), "sessions_ended": ended},
        )  # fmt: skip
    return ended


async def enable_operator(conn: asyncpg.Connection, name: str, *, by: str) -> None:
    async with conn.transaction():
        before = await _state_or_fail(conn, name)
        await accounts.set_disabled(conn, name, False)
        after = await accounts.operator_state(conn, name)
        await record_audit(conn, by, "enable", "operator", name, before=before, after=after)


async def remove_operator(conn: asyncpg.Connection, name: str, *, by: str) -> None:
    """Delete operator `name` with its sessions (the audit log keeps its name)."""
    async with conn.transaction():
        before = await _state_or_fail(conn, name)
        await accounts.end_sessions(conn, name)
        await accounts.delete_operator(conn, name)
        await record_audit(conn, by, "remove", "operator", name, before=before)


async def revoke_tokens(conn: asyncpg.Connection, name: str, *, by: str) -> None:
    """Revoke operator `name`'s API token (streams opened with it close at once)."""
    async with conn.transaction():
        before = await _state_or_fail(conn, name)
        await accounts.set_token(conn, name, None, None)
        after = await accounts.operator_state(conn, name)
        await record_audit(conn, by, "revoke_token", "operator", name, before=before, after=after)


async def issue_token(
    conn: asyncpg.Connection, name: str, *, by: str, expires_in: timedelta | None
) -> str:
    """A new API token for operator `name` (the old one stops working), optionally expiring."""
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
    async with conn.transaction():
        before = await _state_or_fail(conn, name)
        await accounts.set_token(conn, name, hash_token(token), expires_at)
        after = await accounts.operator_state(conn, name)
        await record_audit(conn, by, "issue_token", "operator", name, before=before, after=after)
    return token
