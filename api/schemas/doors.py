"""Doors and devices with their online state."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp
from gateway.domain.roster import DeviceKind, DoorDirection, Transport


class Door(BaseModel):
    id: str
    name: str | None
    zone_id: str
    direction: DoorDirection
    requires_temperature: bool
    devices: int = Field(description="devices at this door")
    devices_online: int = Field(description="of them, online now")


class Device(BaseModel):
    id: str
    door_id: str
    door_name: str | None
    zone_id: str
    kind: DeviceKind
    transport: Transport
    port: str | None
    protocol: str | None
    online: bool
    last_seen: Timestamp | None
    firmware: str | None
