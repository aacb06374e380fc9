"""People as operators read them: search with paging, one person with cards and health status.

Liaison scoping takes `org_scope`: an org unit id whose subtree the caller may see (None: all).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store.org_tree import subtree_cte


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person with their cards and current health status (all None when they have none)."""

    id: str
    kind: str
    name: str
    org_unit_id: str | None
    active: bool
    valid_until: datetime | None
    phone: str | None
    id_number: str | None
    cards: tuple[str, ...]
    health_status: str | None
    health_since: datetime | None
    health_until: datetime | None
    health_reason: str | None
    health_caretaker: str | None


_SELECT = """
SELECT p.id, p.kind, p.name, p.org_unit_id, p.active, p.valid_until, p.phone, p.id_number,
       coalesce(array_agg(c.uid ORDER BY c.uid) FILTER (WHERE c.uid IS NOT NULL), '{}') AS cards,
       h.status AS health_status, h.since AS health_since, h.until AS health_until,
       h.reason AS health_reason, h.caretaker_id AS health_caretaker
FROM people p LEFT JOIN cards c ON c.person_id = p.id LEFT JOIN health_status h ON h.person_id = p.id
"""


def _person(r: asyncpg.Record) -> PersonRow:
    return PersonRow(*r[:8], tuple(r[8]), *r[9:])


async def search_people(
    conn: asyncpg.Connection,
    *,
    q: str | None,
    org_scope: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[PersonRow]]:
    """People matching `q` (name substring, id prefix or card uid), with total count."""
    where = """
    WHERE ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
      AND ($1::text IS NULL OR p.name ILIKE '%' || $1 || '%' OR p.id ILIKE $1 || '%'
           OR EXISTS (SELECT 1 FROM cards k WHERE k.person_id = p.id AND k.uid = upper($1)))
    """
    subtree = subtree_cte(2)
    total = await conn.fetchval(
        subtree + "SELECT count(*) FROM people p " + where, q or None, org_scope
    )
    rows = await conn.fetch(
        subtree
        + _SELECT
        + where
        + " GROUP BY p.id, h.person_id ORDER BY p.name, p.id LIMIT $3 OFFSET $4",
        q or None,
        org_scope,
        limit,
        offset,
    )
    return int(total), [_person(r) for r in rows]


async def get_person(conn: asyncpg.Connection, person_id: str) -> PersonRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE p.id = $1 GROUP BY p.id, h.person_id", person_id)
    return _person(row) if row else None


async def person_org_unit(conn: asyncpg.Connection, person_id: str) -> tuple[bool, str | None]:
    """(exists, org_unit_id) of a person."""
    row = await conn.fetchrow("SELECT org_unit_id FROM people WHERE id = $1", person_id)
    return (row is not None, row[0] if row else None)


async def names_of(conn: asyncpg.Connection, ids: Iterable[str | None]) -> dict[str, str]:
    """The names of the people among `ids` (unknown ids and None are left out)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await conn.fetch("SELECT id, name FROM people WHERE id = ANY($1::text[])", wanted)
    return {r[0]: r[1] for r in rows}
