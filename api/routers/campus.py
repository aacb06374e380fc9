"""Org units and zones: read (everyone), create and update (administrators, audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.roster import Admin, OrgUnitIn, OrgUnitPatch, ZoneIn, ZonePatch, changes, values_of
from api.schemas.campus import OrgUnit, Zone
from gateway.domain.roster import OrgUnit as OrgUnitRecord
from gateway.domain.roster import Zone as ZoneRecord
from gateway.services import roster_admin
from gateway.store import org_units, zones

router = APIRouter(prefix="/api", tags=["campus"])
Reader = Allowed(Permission.READ_CAMPUS)


@router.get("/org-units", response_model=list[OrgUnit])
async def list_org_units(_: Reader, conn: Conn) -> list[OrgUnitRecord]:
    return await org_units.list_org_units(conn)


@router.get("/zones", response_model=list[Zone])
async def list_zones(_: Reader, conn: Conn) -> list[ZoneRecord]:
    return await zones.list_zones(conn)


@router.get("/zones/{zone_id}", response_model=Zone)
async def get_zone(zone_id: str, _: Reader, conn: Conn) -> ZoneRecord:
    zone = await zones.get_zone(conn, zone_id)
    if zone is None:
        raise HTTPException(404, f"no zone {zone_id!r}")
    return zone


@router.post("/org-units", status_code=status.HTTP_201_CREATED)
async def create_org_unit(body: OrgUnitIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.create(conn, "org_unit", values_of(body), by=operator.name)


@router.patch("/org-units/{org_unit_id}")
async def update_org_unit(
    org_unit_id: str, body: OrgUnitPatch, operator: Admin, conn: Conn
) -> dict[str, Any]:
    return await roster_admin.update(conn, "org_unit", org_unit_id, changes(body), by=operator.name)


@router.post("/zones", status_code=status.HTTP_201_CREATED)
async def create_zone(body: ZoneIn, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.create(conn, "zone", values_of(body), by=operator.name)


@router.patch("/zones/{zone_id}")
async def update_zone(zone_id: str, body: ZonePatch, operator: Admin, conn: Conn) -> dict[str, Any]:
    return await roster_admin.update(conn, "zone", zone_id, changes(body), by=operator.name)
