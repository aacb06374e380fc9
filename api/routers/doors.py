"""Doors and devices with their online state and who is inside; administrators create and
update doors and devices (audited; the gateways reload on the roster NOTIFY). Occupancy
per zone and the muster list are in api/routers/occupancy.py; `inside` answers with that
same list, so "who is inside" has one meaning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.roster import Admin, DeviceIn, DevicePatch, DoorIn, DoorPatch, changes, values_of
from api.routers.occupancy import people_inside
from api.schemas.doors import Device, Door
from api.schemas.occupancy import PersonInside
from gateway.services import roster_admin
from gateway.store import devices, doors
from gateway.store.devices import DeviceRow
from gateway.store.doors import DoorRow

router = APIRouter(prefix="/api", tags=["doors"])
Reader = Allowed(Permission.READ_DOORS)


@router.get("/doors", response_model=list[Door])
async def list_doors(_: Reader, conn: Conn, zone: str | None = None) -> list[DoorRow]:
    return await doors.list_doors(conn, zone)


@router.get("/doors/{door_id}", response_model=Door)
async def get_door(door_id: str, _: Reader, conn: Conn) -> DoorRow:
    door = await doors.get_door(conn, door_id)
    if door is None:
        raise HTTPException(404, f"no door {door_id!r}")
    return door


@router.get("/devices", response_model=list[Device])
async def list_devices(_: Reader, conn: Conn, online: bool | None = None) -> list[DeviceRow]:
    return await devices.list_devices(conn, online=online)


@router.get("/devices/{device_id}", response_model=Device)
async def get_device(device_id: str, _: Reader, conn: Conn) -> DeviceRow:
    device = await devices.get_device(conn, device_id)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return device


@router.get("/zones/{zone_id}/inside", response_model=list[PersonInside])
async def inside(zone_id: str, request: Request, _: Reader, conn: Conn) -> list[dict[str, Any]]:
    """Who is inside now: the zone's muster list (the presence horizons of the muster)."""
    return await people_inside(conn, request, zone_id, datetime.now(UTC))


@router.post("/doors", status_code=status.HTTP_201_CREATED)
async def create_door(body: DoorIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.create(conn, "door", values_of(body), by=operator.name)


@router.patch("/doors/{door_id}")
async def update_door(door_id: str, body: DoorPatch, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.update(conn, "door", door_id, changes(body), by=operator.name)


@router.post("/devices", status_code=status.HTTP_201_CREATED)
async def create_device(body: DeviceIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.create(conn, "device", values_of(body), by=operator.name)


@router.patch("/devices/{device_id}")
async def update_device(
    device_id: str, body: DevicePatch, operator: Admin, conn: Conn
) -> dict[str, Any]:
    return await roster_admin.update(conn, "device", device_id, changes(body), by=operator.name)
