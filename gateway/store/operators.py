"""Operators of the console and API, with hashed one-time-shown tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from gateway.domain.operators import OperatorRole


class OperatorExistsError(ValueError):
    """An operator with that name already exists."""


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    role: OperatorRole


async def operator_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM operators WHERE name = $1)", name)
    )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_operator(conn: asyncpg.Connection, name: str, role: OperatorRole | str) -> str:
    """Create an operator and return its API token; only the token's sha256 is stored."""
    name = name.strip()
    if not name:
        raise ValueError("operator name must not be empty")
    try:
        checked = OperatorRole(role)
    except ValueError:
        roles = ", ".join(r.value for r in OperatorRole)
        raise ValueError(f"unknown role {role!r}; expected one of {roles}") from None
    token = secrets.token_urlsafe(32)
    try:
        await conn.execute(
            "INSERT INTO operators (id, name, role, token_hash) VALUES ($1, $2, $3, $4)",
            f"op-{secrets.token_hex(8)}",
            name,
            checked.value,
            hash_token(token),
        )
    except asyncpg.UniqueViolationError:
        raise OperatorExistsError(f"an operator named {name!r} already exists") from None
    return token


async def operator_for_token(conn: asyncpg.Connection, token: str) -> Operator | None:
    """The operator this API token belongs to, if any."""
    row = await conn.fetchrow(
        "SELECT id, name, role FROM operators WHERE token_hash = $1", hash_token(token)
    )
    return Operator(row[0], row[1], OperatorRole(row[2])) if row else None
