"""The org-unit tree as operators read it (a unit's subtree: `gateway.store.org_tree`)."""

from __future__ import annotations

import asyncpg

from gateway.domain.roster import OrgUnit


async def list_org_units(conn: asyncpg.Connection) -> list[OrgUnit]:
    rows = await conn.fetch(
        "SELECT id, name, parent_id FROM org_units ORDER BY parent_id NULLS FIRST, id"
    )
    return [OrgUnit(r[0], r[1], r[2]) for r in rows]


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
