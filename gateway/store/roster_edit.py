"""Single-row roster reads and writes for the operator API's administrators.

Creates and updates go through the import's upserts (gateway.store.roster_write), so a
change the API makes looks to the gateways exactly like one an import makes: the roster
tables' NOTIFY triggers tell every running gateway to reload.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.domain.roster import ZONE_FIELDS

# Columns an administrator sees and changes (never updated_at).
COLUMNS: dict[str, tuple[str, ...]] = {
    "org_units": ("id", "name", "parent_id"),
    "zones": ZONE_FIELDS,
    "doors": ("id", "zone_id", "direction", "requires_temperature", "name"),
    "devices": ("id", "door_id", "kind", "transport", "port", "protocol", "baud"),
    "people": ("id", "kind", "name", "org_unit_id", "active", "valid_until"),
}


async def row(conn: asyncpg.Connection, table: str, row_id: str) -> dict[str, Any] | None:
    """One roster row by id, locked for the caller's transaction."""
    cols = ", ".join(COLUMNS[table])
    found = await conn.fetchrow(f"SELECT {cols} FROM {table} WHERE id = $1 FOR UPDATE", row_id)
    return dict(found) if found else None


async def exists(conn: asyncpg.Connection, table: str, row_id: str) -> bool:
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)", row_id))


async def org_unit_ancestors(conn: asyncpg.Connection, org_unit_id: str) -> list[str]:
    """The org unit and its parents up to the root (stops on a cycle)."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE up AS (
            SELECT id, parent_id FROM org_units WHERE id = $1
            UNION
            SELECT o.id, o.parent_id FROM org_units o JOIN up ON o.id = up.parent_id
        )
        SELECT id FROM up
        """,
        org_unit_id,
    )
    return [r[0] for r in rows]


async def cards_of(conn: asyncpg.Connection, person_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT uid, person_id, revoked, valid_until FROM cards WHERE person_id = $1 ORDER BY uid",
        person_id,
    )
    return [dict(r) for r in rows]


async def card(conn: asyncpg.Connection, uid: str) -> dict[str, Any] | None:
    found = await conn.fetchrow(
        "SELECT uid, person_id, revoked, valid_until FROM cards WHERE uid = $1 FOR UPDATE", uid
    )
    return dict(found) if found else None


async def holder_of_card(conn: asyncpg.Connection, uid: str) -> str | None:
    """The person a card id belongs to, whatever its case."""
    found: str | None = await conn.fetchval(
        "SELECT person_id FROM cards WHERE upper(uid) = upper($1)", uid
    )
    return found


async def revoke_card(conn: asyncpg.Connection, uid: str) -> None:
    await conn.execute(
        "UPDATE cards SET revoked = true, updated_at = now() WHERE uid = $1 AND NOT revoked", uid
    )


async def any_exists(conn: asyncpg.Connection, table: str, row_ids: list[str]) -> bool:
    """Whether any of `row_ids` is in the roster table."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ANY($1::text[]))", row_ids
        )
    )
