"""The roster's devices that speak MQTT, i.e. those that need a broker account."""

from __future__ import annotations

import asyncpg


async def mqtt_device_ids(conn: asyncpg.Connection) -> list[str]:
    """Ids of the devices on MQTT (serial readers are read by the gateway, not the broker)."""
    rows = await conn.fetch("SELECT id FROM devices WHERE transport = 'mqtt' ORDER BY id")
    return [row["id"] for row in rows]


# The roster triggers' NOTIFY channel (migration 0001); the payload is the table changed.
ROSTER_CHANNEL = "campusgate_roster"
