"""Grants as stored: list, one, insert and delete (the import upserts them in roster_write)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    subject_person: str | None
    subject_org_unit: str | None
    subject_kind: str | None
    zone_id: str
    schedule: str | None
    valid_from: datetime | None
    valid_until: datetime | None


_SELECT = """
SELECT id, subject_person, subject_org_unit, subject_kind, zone_id, schedule, valid_from, valid_until
FROM grants
"""


async def list_grants(
    conn: asyncpg.Connection, *, zone_id: str | None = None, person_id: str | None = None
) -> list[GrantRow]:
    rows = await conn.fetch(
        _SELECT
        + " WHERE ($1::text IS NULL OR zone_id = $1) AND ($2::text IS NULL OR subject_person = $2)"
        " ORDER BY id",
        zone_id,
        person_id,
    )
    return [GrantRow(*r) for r in rows]


async def get_grant(conn: asyncpg.Connection, grant_id: int) -> GrantRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE id = $1", grant_id)
    return GrantRow(*row) if row else None


async def insert_grant(conn: asyncpg.Connection, grant: dict[str, Any]) -> GrantRow:
    """Insert a grant; raises asyncpg.UniqueViolationError / ForeignKeyViolationError."""
    row = await conn.fetchrow(
        "INSERT INTO grants (subject_person, subject_org_unit, subject_kind, zone_id, schedule,"
        " valid_from, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        grant.get("subject_person"),
        grant.get("subject_org_unit"),
        grant.get("subject_kind"),
        grant["zone_id"],
        grant.get("schedule"),
        grant.get("valid_from"),
        grant.get("valid_until"),
    )
    created = await get_grant(conn, row[0])
    assert created is not None
    return created


async def delete_grant(conn: asyncpg.Connection, grant_id: int) -> None:
    await conn.execute("DELETE FROM grants WHERE id = $1", grant_id)
