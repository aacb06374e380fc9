"""Org units and zones (read; the manifest import writes them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.deps import Allowed, Conn
from api.permissions import Permission
from gateway.store import console

router = APIRouter(prefix="/api", tags=["campus"])
Reader = Allowed(Permission.READ_CAMPUS)


@router.get("/org-units")
async def list_org_units(_: Reader, conn: Conn) -> list[dict[str, Any]]:
    return await console.list_org_units(conn)


@router.get("/zones")
async def list_zones(_: Reader, conn: Conn) -> list[dict[str, Any]]:
    return await console.list_zones(conn)


@router.get("/zones/{zone_id}")
async def get_zone(zone_id: str, _: Reader, conn: Conn) -> dict[str, Any]:
    zone = await console.get_zone(conn, zone_id)
    if zone is None:
        raise HTTPException(404, f"no zone {zone_id!r}")
    return zone
