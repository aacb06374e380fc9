"""Operator accounts for the console: lookup, password hashes, org units and sessions.

Hashing itself is the services' job; this module only stores and finds the hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.domain.operators import OperatorRole
from gateway.store.operators import hash_token


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
    """The enabled operator whose unexpired, unrevoked API token this is."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM operators o WHERE o.token_hash = $1 AND o.disabled_at IS NULL "
        "AND (o.token_expires_at IS NULL OR o.token_expires_at > now())",
        hash_token(token),
    )
    return _account(row) if row else None


async def account_with_password(
    conn: asyncpg.Connection, name: str
) -> tuple[Account, str | None] | None:
    """The enabled operator named `name` and its password hash (None when it has none)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, o.password_hash FROM operators o "
        "WHERE o.name = $1 AND o.disabled_at IS NULL",
        name,
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


async def session_for_token(
    conn: asyncpg.Connection, token: str, idle: timedelta, *, touch: bool = True
) -> Session | None:
    """The live session of this cookie value: not expired, not idle longer than `idle`,
    of an enabled operator. `touch` marks it used now (written at most once a minute)."""
    digest = hash_token(token)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, s.csrf_token, s.expires_at, s.last_seen_at FROM operator_sessions s "
        "JOIN operators o ON o.id = s.operator_id "
        "WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval "
        "AND o.disabled_at IS NULL",
        digest,
        idle,
    )
    if row is None:
        return None
    if touch:
        await conn.execute(
            "UPDATE operator_sessions SET last_seen_at = now() "
            "WHERE token_hash = $1 AND last_seen_at < now() - interval '1 minute'",
            digest,
        )
    return Session(_account(row), row[4], row[5])


async def delete_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM operator_sessions WHERE token_hash = $1", hash_token(token))


async def end_sessions(conn: asyncpg.Connection, name: str) -> int:
    """Delete every console session of operator `name`; how many there were."""
    done = await conn.execute(
        "DELETE FROM operator_sessions s USING operators o "
        "WHERE o.id = s.operator_id AND o.name = $1",
        name,
    )
    return int(done.split()[-1])


async def set_disabled(conn: asyncpg.Connection, name: str, disabled: bool) -> bool:
    """Disable (or enable again) operator `name`; False when no operator has that name."""
    done = await conn.execute(
        "UPDATE operators SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END "
        "WHERE name = $1",
        name,
        disabled,
    )
    return done != "UPDATE 0"


async def set_token(
    conn: asyncpg.Connection, name: str, token_hash: str | None, expires_at: datetime | None
) -> bool:
    """Replace operator `name`'s API token (None revokes it); False when no such operator."""
    done = await conn.execute(
        "UPDATE operators SET token_hash = $2, token_expires_at = $3 WHERE name = $1",
        name,
        token_hash,
        expires_at,
    )
    return done != "UPDATE 0"


async def delete_operator(conn: asyncpg.Connection, name: str) -> bool:
    """Remove operator `name` and its sessions; False when no operator has that name."""
    done = await conn.execute("DELETE FROM operators WHERE name = $1", name)
    return done != "DELETE 0"


async def operator_state(conn: asyncpg.Connection, name: str) -> dict[str, object] | None:
    """Role, disabled time and token expiry of operator `name` (for audit and the CLI)."""
    row = await conn.fetchrow(
        "SELECT role, org_unit_id, disabled_at, token_expires_at, token_hash IS NOT NULL "
        "FROM operators WHERE name = $1",
        name,
    )
    if row is None:
        return None
    return {
        "role": row[0],
        "org_unit": row[1],
        "disabled_at": row[2].isoformat() if row[2] else None,
        "token_expires_at": row[3].isoformat() if row[3] else None,
        "has_token": row[4],
    }


async def record_login_failure(conn: asyncpg.Connection, name: str, address: str) -> int:
    """Count a failed (or not yet checked) login; the row's id."""
    return await conn.fetchval(
        "INSERT INTO login_failures (name, address) VALUES ($1, $2) RETURNING id", name, address
    )


async def forget_login_failure(conn: asyncpg.Connection, attempt: int) -> None:
    await conn.execute("DELETE FROM login_failures WHERE id = $1", attempt)


async def recent_login_failures(
    conn: asyncpg.Connection, name: str, address: str, window: timedelta
) -> tuple[int, int]:
    """Failed logins within `window`: (for this name from anywhere, from this address).

    The address count is per realm: people's sign-ins (names `person:...`) and
    operators' logins are counted apart, so students failing behind one campus NAT
    never lock the guards out of the console, nor the other way round.
    """
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM login_failures WHERE name = $1 AND ts > now() - $3::interval),"
        " (SELECT count(*) FROM login_failures WHERE address = $2 AND ts > now() - $3::interval"
        "  AND (name LIKE 'person:%') = ($1 LIKE 'person:%'))",
        name,
        address,
        window,
    )
    return int(row[0]), int(row[1])


async def clear_login_failures(conn: asyncpg.Connection, name: str, address: str) -> None:
    """A successful login forgets that name's failures from that address."""
    await conn.execute("DELETE FROM login_failures WHERE name = $1 AND address = $2", name, address)


async def forget_login_failures(conn: asyncpg.Connection, older_than: timedelta) -> None:
    await conn.execute("DELETE FROM login_failures WHERE ts < now() - $1::interval", older_than)
