"""The org-unit tree: an org unit's subtree, the scope a liaison is confined to."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


def subtree_cte(param: int) -> str:
    """`WITH RECURSIVE scope AS (...)`: the org unit given as `$param` and every unit
    under it, for a query to filter on `org_unit_id IN (SELECT id FROM scope)`.

    A NULL parameter gives an empty scope; callers test `$param IS NULL` for "no limit".
    """
    return f"""
WITH RECURSIVE scope AS (
    SELECT id FROM org_units WHERE id = ${param}
    UNION ALL
    SELECT o.id FROM org_units o JOIN scope s ON o.parent_id = s.id
)
"""


async def org_subtree(conn: asyncpg.Connection, org_unit_id: str) -> list[str]:
    """The org unit and every unit under it."""
    rows = await conn.fetch(subtree_cte(1) + "SELECT id FROM scope", org_unit_id)
    return [r[0] for r in rows]


async def people_in_scope(
    conn: asyncpg.Connection, person_ids: Sequence[str], org_scope: str | None
) -> dict[str, bool]:
    """Which of `person_ids` exist, each with whether they belong to `org_scope`'s subtree
    (False for everyone when `org_scope` is None: the caller does not limit then)."""
    rows = await conn.fetch(
        subtree_cte(2)
        + """
        SELECT id, org_unit_id IN (SELECT id FROM scope) AS in_scope
        FROM people WHERE id = ANY($1::text[])
        """,
        list(person_ids),
        org_scope,
    )
    return {r[0]: bool(r[1]) for r in rows}
