"""Response levels: definitions, the active level per scope, and the change history."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.domain.levels import ActiveLevels, LevelRules, ResponseLevel

_DEFINITION_COLUMNS = (
    "name, rank, title_zh, title_en, description, bar_visitors, require_temperature,"
    " capacity_factor, labs_named_only, trips_need_approval, checkin_zones"
)


def _level(r: asyncpg.Record) -> ResponseLevel:
    rules = LevelRules(
        bar_visitors=r["bar_visitors"],
        require_temperature=r["require_temperature"],
        capacity_factor=float(r["capacity_factor"]),
        labs_named_only=r["labs_named_only"],
        trips_need_approval=r["trips_need_approval"],
        checkin_zones=frozenset(r["checkin_zones"]),
    )
    return ResponseLevel(
        r["name"], rules, r["rank"], r["title_zh"], r["title_en"], r["description"]
    )


async def load_level_definitions(conn: asyncpg.Connection) -> tuple[ResponseLevel, ...]:
    rows = await conn.fetch(
        f"SELECT {_DEFINITION_COLUMNS} FROM response_levels ORDER BY rank, name"
    )
    return tuple(_level(r) for r in rows)


async def load_active_levels(conn: asyncpg.Connection) -> ActiveLevels:
    rows = await conn.fetch("SELECT zone_id, level FROM response_level_state")
    campus = next((r[1] for r in rows if r[0] is None), None)
    return ActiveLevels(campus, {r[0]: r[1] for r in rows if r[0] is not None})


async def load_levels(
    conn: asyncpg.Connection,
) -> tuple[tuple[ResponseLevel, ...], ActiveLevels]:
    """Definitions and active levels from one snapshot (the gateway's levels-only reload)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_level_definitions(conn), await load_active_levels(conn)


async def definitions(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_DEFINITION_COLUMNS}, updated_by, updated_at FROM response_levels"
        " ORDER BY rank, name"
    )
    return [_definition_dict(r) for r in rows]


async def definition(
    conn: asyncpg.Connection, name: str, *, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_DEFINITION_COLUMNS}, updated_by, updated_at FROM response_levels"
        f" WHERE name = $1{' FOR UPDATE' if lock else ''}",
        name,
    )
    return _definition_dict(row) if row else None


def _definition_dict(r: asyncpg.Record) -> dict[str, Any]:
    values = dict(r)
    values["capacity_factor"] = float(values["capacity_factor"])
    values["checkin_zones"] = sorted(values["checkin_zones"])
    return values


async def save_definition(conn: asyncpg.Connection, level: ResponseLevel, *, by: str) -> None:
    """Insert or replace a definition (the caller audits)."""
    rules = level.rules
    await conn.execute(
        """
        INSERT INTO response_levels (name, rank, title_zh, title_en, description, bar_visitors,
            require_temperature, capacity_factor, labs_named_only, trips_need_approval,
            updated_by, checkin_zones)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (name) DO UPDATE SET rank = EXCLUDED.rank, title_zh = EXCLUDED.title_zh,
            title_en = EXCLUDED.title_en, description = EXCLUDED.description,
            bar_visitors = EXCLUDED.bar_visitors,
            require_temperature = EXCLUDED.require_temperature,
            capacity_factor = EXCLUDED.capacity_factor,
            labs_named_only = EXCLUDED.labs_named_only,
            trips_need_approval = EXCLUDED.trips_need_approval,
            checkin_zones = EXCLUDED.checkin_zones,
            updated_by = EXCLUDED.updated_by, updated_at = now()
        """,
        level.name,
        level.rank,
        level.title_zh,
        level.title_en,
        level.description,
        rules.bar_visitors,
        rules.require_temperature,
        rules.capacity_factor,
        rules.labs_named_only,
        rules.trips_need_approval,
        by,
        sorted(rules.checkin_zones),
    )


async def active(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every active level row, the campus-wide one (zone_id None) first."""
    rows = await conn.fetch(
        """
        SELECT s.zone_id, z.name AS zone_name, s.level, s.set_by, s.set_at, s.note
        FROM response_level_state s LEFT JOIN zones z ON z.id = s.zone_id
        ORDER BY s.zone_id NULLS FIRST
        """
    )
    return [dict(r) for r in rows]


async def active_level_of(conn: asyncpg.Connection, zone_id: str | None) -> str | None:
    """The level set for this scope (None: campus-wide), locked until the transaction ends."""
    return await conn.fetchval(
        "SELECT level FROM response_level_state WHERE zone_id IS NOT DISTINCT FROM $1 FOR UPDATE",
        zone_id,
    )


async def write_level(
    conn: asyncpg.Connection,
    zone_id: str | None,
    before: str | None,
    after: str | None,
    *,
    by: str,
    note: str,
) -> dict[str, Any]:
    """Set (or, for a zone, clear with None) a scope's level and append the change."""
    if zone_id is None:
        await conn.execute(
            "UPDATE response_level_state SET level = $1, set_by = $2, set_at = now(), note = $3"
            " WHERE zone_id IS NULL",
            after,
            by,
            note,
        )
    elif after is None:
        await conn.execute("DELETE FROM response_level_state WHERE zone_id = $1", zone_id)
    else:
        await conn.execute(
            """
            INSERT INTO response_level_state (zone_id, level, set_by, note) VALUES ($1, $2, $3, $4)
            ON CONFLICT (zone_id) DO UPDATE SET level = EXCLUDED.level, set_by = EXCLUDED.set_by,
                set_at = now(), note = EXCLUDED.note
            """,
            zone_id,
            after,
            by,
            note,
        )
    row = await conn.fetchrow(
        """
        INSERT INTO response_level_changes (changed_by, zone_id, from_level, to_level, note)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id, changed_at, changed_by, zone_id, from_level, to_level, note
        """,
        by,
        zone_id,
        before,
        after,
        note,
    )
    return dict(row)


async def history(
    conn: asyncpg.Connection, *, zone_id: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Level changes, newest first; `zone_id` narrows to one zone's."""
    rows = await conn.fetch(
        """
        SELECT id, changed_at, changed_by, zone_id, from_level, to_level, note
        FROM response_level_changes
        WHERE $1::text IS NULL OR zone_id = $1
        ORDER BY changed_at DESC, id DESC LIMIT $2 OFFSET $3
        """,
        zone_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]
