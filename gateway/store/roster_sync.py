"""People a full export leaves out: who they are, and marking them inactive."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg


async def active_people_of_kinds(conn: asyncpg.Connection, kinds: Collection[str]) -> list[str]:
    """Ids of the active people of these kinds, sorted."""
    rows = await conn.fetch(
        "SELECT id FROM people WHERE active AND kind = ANY($1::text[]) ORDER BY id", list(kinds)
    )
    return [r[0] for r in rows]


async def deactivate_people(conn: asyncpg.Connection, ids: Collection[str]) -> int:
    """Mark these people inactive (their cards are then denied); returns how many changed."""
    status = await conn.execute(
        "UPDATE people SET active = false, updated_at = now() WHERE active AND id = ANY($1::text[])",
        list(ids),
    )
    return int(status.split()[-1])
