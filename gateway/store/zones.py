"""Zones as operators read them, and their display names."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from gateway.domain.roster import CapacityMode, Zone, ZoneKind

_COLUMNS = "id, name, kind, capacity, capacity_mode, gathering_threshold, gathering_minutes"


def _zone(r: asyncpg.Record) -> Zone:
    return Zone(r[0], r[1], ZoneKind(r[2]), r[3], CapacityMode(r[4]), r[5], r[6])


async def list_zones(conn: asyncpg.Connection) -> list[Zone]:
    return [_zone(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM zones ORDER BY id")]


async def get_zone(conn: asyncpg.Connection, zone_id: str) -> Zone | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM zones WHERE id = $1", zone_id)
    return _zone(row) if row else None


async def zone_names_of(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The names of the zones among `ids` (unknown ids are left out)."""
    rows = await conn.fetch(
        "SELECT id, name FROM zones WHERE id = ANY($1::text[])", sorted(set(ids))
    )
    return {r[0]: r[1] for r in rows}
