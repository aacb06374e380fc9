"""Doors as operators read them: with how many of their devices there are and are online."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class DoorRow:
    id: str
    name: str | None
    zone_id: str
    direction: str
    requires_temperature: bool
    devices: int
    devices_online: int


_SELECT = """
SELECT d.id, d.name, d.zone_id, d.direction, d.requires_temperature,
       count(v.id)::int AS devices,
       count(v.id) FILTER (WHERE coalesce(s.online, false))::int AS devices_online
FROM doors d LEFT JOIN devices v ON v.door_id = d.id LEFT JOIN device_status s ON s.device_id = v.id
"""


async def list_doors(conn: asyncpg.Connection, zone_id: str | None = None) -> list[DoorRow]:
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::text IS NULL OR d.zone_id = $1) GROUP BY d.id ORDER BY d.id",
        zone_id,
    )
    return [DoorRow(*r) for r in rows]


async def get_door(conn: asyncpg.Connection, door_id: str) -> DoorRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE d.id = $1 GROUP BY d.id", door_id)
    return DoorRow(*row) if row else None
