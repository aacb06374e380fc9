"""Occupancy per zone and the muster list (who is inside now), as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.schemas.occupancy import ZoneOccupancy
from gateway.services import occupancy as service
from gateway.store.zones import get_zone

router = APIRouter(prefix="/api", tags=["occupancy"])
Reader = Allowed(Permission.READ_MUSTER)


def _max_stay_h(request: Request) -> float:
    return request.app.state.settings.trace_max_stay_h


async def people_inside(
    conn: Conn, request: Request, zone_id: str, now: datetime
) -> list[dict[str, Any]]:
    """The muster list of a zone (404 for an unknown zone): also GET /api/zones/{id}/inside."""
    if await get_zone(conn, zone_id) is None:
        raise HTTPException(404, f"no zone {zone_id!r}")
    return await service.muster(conn, zone_id, now, _max_stay_h(request))


@router.get("/occupancy", response_model=list[ZoneOccupancy])
async def all_zones(request: Request, _: Reader, conn: Conn) -> list[dict[str, Any]]:
    """Every zone: people inside, capacity (configured and in force), mode, gathering watch."""
    return await service.zone_occupancy(conn, datetime.now(UTC), _max_stay_h(request))


@router.get("/zones/{zone_id}/occupancy", response_model=ZoneOccupancy)
async def one_zone(zone_id: str, request: Request, _: Reader, conn: Conn) -> dict[str, Any]:
    rows = await service.zone_occupancy(conn, datetime.now(UTC), _max_stay_h(request), zone_id)
    if not rows:
        raise HTTPException(404, f"no zone {zone_id!r}")
    return rows[0]


@router.get(
    "/zones/{zone_id}/muster",
    response_model=None,
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/PersonInside"},
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def muster(
    zone_id: str,
    request: Request,
    _: Reader,
    conn: Conn,
    format: Literal["json", "csv"] = "json",
) -> list[dict[str, Any]] | Response:
    """Who is inside: person, name, kind, org unit, since, the door they entered by.

    A person is inside when their last admitted passage of the zone was `in`, within
    the zone's presence horizon (72 h in dormitories, CAMPUSGATE_TRACE_MAX_STAY_H elsewhere).
    """
    now = datetime.now(UTC)
    rows = await people_inside(conn, request, zone_id, now)
    if format == "json":
        return rows
    stamp = now.strftime("%Y%m%dT%H%MZ")
    return Response(
        "\ufeff" + service.muster_csv(rows),  # the BOM: spreadsheet programs then read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="muster-{stamp}.csv"'},
    )
