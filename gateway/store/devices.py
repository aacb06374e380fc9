"""Devices with their live state (online, last seen, firmware), kept apart from the roster.

State writes go to `device_status`, which has no roster trigger, so heartbeats
never make gateways reload the roster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as operators read it: where it hangs and whether it is online."""

    id: str
    door_id: str
    door_name: str | None
    zone_id: str
    kind: str
    transport: str
    port: str | None
    protocol: str | None
    online: bool
    last_seen: datetime | None
    firmware: str | None


_SELECT = """
SELECT v.id, v.door_id, d.name AS door_name, d.zone_id, v.kind, v.transport, v.port, v.protocol,
       coalesce(s.online, false) AS online, s.last_seen, s.firmware
FROM devices v JOIN doors d ON d.id = v.door_id LEFT JOIN device_status s ON s.device_id = v.id
"""


async def list_devices(conn: asyncpg.Connection, *, online: bool | None = None) -> list[DeviceRow]:
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::boolean IS NULL OR coalesce(s.online, false) = $1) ORDER BY v.id",
        online,
    )
    return [DeviceRow(*r) for r in rows]


async def get_device(conn: asyncpg.Connection, device_id: str) -> DeviceRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE v.id = $1", device_id)
    return DeviceRow(*row) if row else None


async def set_device_state(
    conn: asyncpg.Connection,
    device_id: str,
    *,
    online: bool,
    ts: datetime,
    firmware: str | None = None,
) -> None:
    """Record that a device went online or offline at `ts` (firmware kept when None)."""
    await conn.execute(
        """
        INSERT INTO device_status AS s (device_id, online, last_seen, firmware)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (device_id) DO UPDATE SET
            online = EXCLUDED.online,
            last_seen = greatest(s.last_seen, EXCLUDED.last_seen),
            firmware = coalesce(EXCLUDED.firmware, s.firmware)
        """,
        device_id,
        online,
        ts,
        firmware,
    )


async def touch_devices(conn: asyncpg.Connection, seen: dict[str, datetime]) -> None:
    """Advance last_seen (and mark online) for many devices at once; unknown ids are skipped."""
    if not seen:
        return
    await conn.execute(
        """
        INSERT INTO device_status AS s (device_id, online, last_seen)
        SELECT d.id, true, u.ts
        FROM unnest($1::text[], $2::timestamptz[]) AS u (id, ts) JOIN devices d ON d.id = u.id
        ON CONFLICT (device_id) DO UPDATE SET
            online = true,
            last_seen = greatest(s.last_seen, EXCLUDED.last_seen)
        """,
        list(seen),
        list(seen.values()),
    )


async def device_states(
    conn: asyncpg.Connection,
) -> dict[str, tuple[bool, datetime | None, str | None]]:
    """device_id -> (online, last_seen, firmware) for every device with a known state."""
    rows = await conn.fetch("SELECT device_id, online, last_seen, firmware FROM device_status")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}
