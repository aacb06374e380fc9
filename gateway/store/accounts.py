"""Operator accounts for the console: lookup, password hashes, org units and sessions.

Hashing itself is the services' job; this module only stores and finds the hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store.operators import OperatorRole, hash_token


@dataclass(frozen=True, slots=True)
class Account:
    """An operator as the API sees it: who, which role, which org unit (liaisons)."""

    id: str
    name: str
    role: OperatorRole
    org_unit_id: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    csrf_token: str
    expires_at: datetime


_COLUMNS = "o.id, o.name, o.role, o.org_unit_id"


def _account(r: asyncpg.Record) -> Account:
    return Account(r[0], r[1], OperatorRole(r[2]), r[3])


async def account_for_token(conn: asyncpg.Connection, token: str) -> Account | None:
    """The operator whose API token this is."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM operators o WHERE o.token_hash = $1", hash_token(token)
    )
    return _account(row) if row else None


async def account_with_password(
    conn: asyncpg.Connection, name: str
) -> tuple[Account, str | None] | None:
    """The operator named `name` and its password hash (None when it has no password)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, o.password_hash FROM operators o WHERE o.name = $1", name
    )
    return (_account(row), row[4]) if row else None


async def set_password_hash(conn: asyncpg.Connection, name: str, password_hash: str) -> bool:
    """Store a new password hash; False when no operator has that name."""
    done = await conn.execute(
        "UPDATE operators SET password_hash = $2 WHERE name = $1", name, password_hash
    )
    return done != "UPDATE 0"


async def set_org_unit(conn: asyncpg.Connection, name: str, org_unit_id: str | None) -> bool:
    """Set the operator's org unit (a liaison sees it and everything under it)."""
    done = await conn.execute(
        "UPDATE operators SET org_unit_id = $2 WHERE name = $1", name, org_unit_id
    )
    return done != "UPDATE 0"


async def create_session(
    conn: asyncpg.Connection, account: Account, token: str, csrf_token: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        hash_token(token),
        account.id,
        csrf_token,
        expires_at,
    )


async def session_for_token(conn: asyncpg.Connection, token: str) -> Session | None:
    """The live session of this cookie value (expired ones are not returned)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, s.csrf_token, s.expires_at FROM operator_sessions s "
        "JOIN operators o ON o.id = s.operator_id "
        "WHERE s.token_hash = $1 AND s.expires_at > now()",
        hash_token(token),
    )
    return Session(_account(row), row[4], row[5]) if row else None


async def delete_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM operator_sessions WHERE token_hash = $1", hash_token(token))
