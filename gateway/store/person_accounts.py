"""Person accounts: invitations, password hashes and sessions of students and staff.

Only hashes of invitation and session tokens are stored (SHA-256, like operators' tokens);
hashing passwords is the services' job. A person whose roster row is inactive or expired
has no live session and cannot sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.store.operators import hash_token


@dataclass(frozen=True, slots=True)
class PersonAccount:
    """A person's account: its id and the roster person it belongs to."""

    id: int
    person_id: str


@dataclass(frozen=True, slots=True)
class PersonSession:
    account: PersonAccount
    csrf_token: str
    expires_at: datetime


# The roster row that may sign in: active, and not past its own end of validity.
_PERSON_OK = "p.active AND (p.valid_until IS NULL OR p.valid_until > now())"


async def person_may_sign_in(conn: asyncpg.Connection, person_id: str) -> bool | None:
    """True when the person exists and may sign in, False when deactivated, None if unknown."""
    row = await conn.fetchrow(f"SELECT {_PERSON_OK} FROM people p WHERE p.id = $1", person_id)
    return None if row is None else bool(row[0])


async def person_id_by_column(conn: asyncpg.Connection, column: str, value: str) -> str | None:
    """The id of the person whose `column` ('id' or 'id_number') equals `value`."""
    if column not in ("id", "id_number"):
        raise ValueError(f"cannot find people by {column!r}")
    rows = await conn.fetch(f"SELECT id FROM people WHERE {column} = $1 LIMIT 2", value)
    return rows[0][0] if len(rows) == 1 else None


async def ensure_account(conn: asyncpg.Connection, person_id: str) -> PersonAccount:
    """The person's account, created (without a password) when they have none."""
    row = await conn.fetchrow(
        "INSERT INTO person_accounts (person_id) VALUES ($1) "
        "ON CONFLICT (person_id) DO UPDATE SET person_id = EXCLUDED.person_id RETURNING id",
        person_id,
    )
    return PersonAccount(int(row[0]), person_id)


async def account_with_password(
    conn: asyncpg.Connection, person_id: str
) -> tuple[PersonAccount, str | None] | None:
    """The account of a person allowed to sign in, with its password hash (None if unset)."""
    row = await conn.fetchrow(
        "SELECT a.id, a.person_id, a.password_hash FROM person_accounts a "
        f"JOIN people p ON p.id = a.person_id WHERE a.person_id = $1 AND {_PERSON_OK}",
        person_id,
    )
    return (PersonAccount(int(row[0]), row[1]), row[2]) if row else None


async def create_invitation(
    conn: asyncpg.Connection, account: PersonAccount, token: str, expires_at: datetime, by: str
) -> None:
    """Store a new invitation; the account's earlier unused ones stop working."""
    await conn.execute(
        "UPDATE person_invitations SET used_at = now() WHERE account_id = $1 AND used_at IS NULL",
        account.id,
    )
    await conn.execute(
        "INSERT INTO person_invitations (token_hash, account_id, created_by, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        hash_token(token),
        account.id,
        by,
        expires_at,
    )


async def claim_invitation(conn: asyncpg.Connection, token: str) -> PersonAccount | None:
    """Mark the invitation used and return its account; None when the token is unknown,
    used, expired, or its person may not sign in. One caller wins a race (row lock)."""
    row = await conn.fetchrow(
        "UPDATE person_invitations i SET used_at = now() FROM person_accounts a, people p "
        "WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > now() "
        f"AND a.id = i.account_id AND p.id = a.person_id AND {_PERSON_OK} "
        "RETURNING a.id, a.person_id",
        hash_token(token),
    )
    return PersonAccount(int(row[0]), row[1]) if row else None


async def invitation_is_open(conn: asyncpg.Connection, token: str) -> bool:
    """Whether the token is an unused, unexpired invitation (the page checks before asking)."""
    found = await conn.fetchval(
        "SELECT 1 FROM person_invitations WHERE token_hash = $1 AND used_at IS NULL "
        "AND expires_at > now()",
        hash_token(token),
    )
    return found is not None


async def set_password_hash(conn: asyncpg.Connection, account: PersonAccount, hashed: str) -> None:
    await conn.execute(
        "UPDATE person_accounts SET password_hash = $2, password_set_at = now() WHERE id = $1",
        account.id,
        hashed,
    )


async def create_session(
    conn: asyncpg.Connection,
    account: PersonAccount,
    token: str,
    csrf_token: str,
    via: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO person_sessions (token_hash, account_id, via, csrf_token, expires_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        hash_token(token),
        account.id,
        via,
        csrf_token,
        expires_at,
    )
    await conn.execute("UPDATE person_accounts SET last_login_at = now() WHERE id = $1", account.id)


async def session_for_token(
    conn: asyncpg.Connection, token: str, idle: timedelta
) -> PersonSession | None:
    """The live session of this token: unexpired, used within `idle`, of a person who may
    still sign in. Marks it used (written at most once a minute)."""
    digest = hash_token(token)
    row = await conn.fetchrow(
        "SELECT a.id, a.person_id, s.csrf_token, s.expires_at FROM person_sessions s "
        "JOIN person_accounts a ON a.id = s.account_id JOIN people p ON p.id = a.person_id "
        "WHERE s.token_hash = $1 AND s.expires_at > now() "
        f"AND s.last_seen_at > now() - $2::interval AND {_PERSON_OK}",
        digest,
        idle,
    )
    if row is None:
        return None
    await conn.execute(
        "UPDATE person_sessions SET last_seen_at = now() "
        "WHERE token_hash = $1 AND last_seen_at < now() - interval '1 minute'",
        digest,
    )
    return PersonSession(PersonAccount(int(row[0]), row[1]), row[2], row[3])


async def delete_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM person_sessions WHERE token_hash = $1", hash_token(token))


async def end_sessions(conn: asyncpg.Connection, person_id: str) -> int:
    """Delete every session of the person; how many there were."""
    done = await conn.execute(
        "DELETE FROM person_sessions s USING person_accounts a "
        "WHERE a.id = s.account_id AND a.person_id = $1",
        person_id,
    )
    return int(done.split()[-1])


_STALE_SESSIONS = "FROM person_sessions WHERE expires_at < now()"
_STALE_INVITATIONS = (
    "FROM person_invitations WHERE expires_at < now() - interval '1 day' "
    "OR used_at < now() - interval '1 day'"
)


async def purge_stale(conn: asyncpg.Connection, *, dry_run: bool = False) -> dict[str, int]:
    """Delete (or count) expired sessions and invitations expired or used over a day ago."""
    counts: dict[str, int] = {}
    for key, rows in (
        ("person_sessions", _STALE_SESSIONS),
        ("person_invitations", _STALE_INVITATIONS),
    ):
        if dry_run:
            counts[key] = int(await conn.fetchval(f"SELECT count(*) {rows}"))
        else:
            counts[key] = int((await conn.execute(f"DELETE {rows}")).split()[-1])
    return counts


# A roster person `p` who left before the cut-off $1: deactivated, or past their own end.
DEPARTED_PERSON = "((NOT p.active AND p.deactivated_at < $1) OR p.valid_until < $1)"
_DEPARTED_ACCOUNTS = (
    "SELECT a.id FROM person_accounts a JOIN people p ON p.id = a.person_id "
    f"WHERE {DEPARTED_PERSON}"
)


async def purge_departed(
    conn: asyncpg.Connection, cutoff: datetime, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete (or count) the accounts of people who left the roster before `cutoff`, with
    their sessions and invitations (cascade); the roster row itself stays."""
    counts: dict[str, int] = {}
    async with conn.transaction():
        for key, table in (
            ("departed_person_sessions", "person_sessions"),
            ("departed_person_invitations", "person_invitations"),
        ):
            counts[key] = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE account_id IN ({_DEPARTED_ACCOUNTS})",
                    cutoff,
                )
            )
        if dry_run:
            counts["person_accounts"] = int(
                await conn.fetchval(f"SELECT count(*) FROM ({_DEPARTED_ACCOUNTS}) d", cutoff)
            )
        else:
            done = await conn.execute(
                f"DELETE FROM person_accounts WHERE id IN ({_DEPARTED_ACCOUNTS})", cutoff
            )
            counts["person_accounts"] = int(done.split()[-1])
    return counts


@dataclass(frozen=True, slots=True)
class OwnRecord:
    """What a person may read about themselves."""

    person_id: str
    name: str
    kind: str
    unit_id: str | None
    unit_name: str | None
    health_status: str | None
    health_since: datetime | None
    health_until: datetime | None
    caretaker_name: str | None
    caretaker_phone: str | None


async def own_record(conn: asyncpg.Connection, person_id: str) -> OwnRecord | None:
    row = await conn.fetchrow(
        "SELECT p.id, p.name, p.kind, p.org_unit_id, u.name, h.status, h.since, h.until, "
        "c.name, c.phone FROM people p "
        "LEFT JOIN org_units u ON u.id = p.org_unit_id "
        "LEFT JOIN health_status h ON h.person_id = p.id "
        "LEFT JOIN people c ON c.id = h.caretaker_id WHERE p.id = $1",
        person_id,
    )
    return OwnRecord(*row) if row else None
