"""Operator passwords (argon2) and console sessions, shared by the API and the CLI."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.store import accounts
from gateway.store.accounts import Account, Session
from gateway.store.audit import record_audit

MIN_PASSWORD_LENGTH = 8
SESSION_LIFETIME = timedelta(hours=12)

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class PasswordPolicyError(ValueError):
    """The password is too weak to set."""


class UnknownOperatorError(LookupError):
    """No operator has that name."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


async def set_password(conn: asyncpg.Connection, name: str, password: str, *, by: str) -> None:
    """Set operator `name`'s console password (audited; the hash is never logged)."""
    hashed = hash_password(password)
    async with conn.transaction():
        if not await accounts.set_password_hash(conn, name, hashed):
            raise UnknownOperatorError(f"no operator named {name!r}")
        await record_audit(conn, by, "set_password", "operator", name)


async def check_password(conn: asyncpg.Connection, name: str, password: str) -> Account | None:
    """The operator when `password` is theirs; None otherwise (same cost either way)."""
    found = await accounts.account_with_password(conn, name)
    stored = found[1] if found else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if found is None or stored is None:
        return None
    return found[0]


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
