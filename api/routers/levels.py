"""Response levels: what is in force and its history (every operator), setting a level
(SET_RESPONSE_LEVEL), editing definitions (administrators)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Allowed, Conn, CurrentOperator
from api.permissions import Permission
from api.roster import Admin
from api.schemas.levels import LevelHistoryEntry, LevelsInForce
from gateway.domain.levels import LevelRules, ResponseLevel
from gateway.services import levels as service

router = APIRouter(prefix="/api/levels", tags=["levels"])
Setter = Allowed(Permission.SET_RESPONSE_LEVEL)

LevelName = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]
ZoneId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Note = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")]
Title = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LevelChange(_Body):
    """`level` campus-wide, or in each of `zones`; a null level clears the zones' own."""

    level: LevelName | None
    zones: list[ZoneId] | None = Field(default=None, max_length=500)
    note: Note = ""


class LevelDefinition(_Body):
    rank: int = Field(default=0, ge=-1000, le=1000)
    title_zh: Title
    title_en: Title
    description: Note = ""
    bar_visitors: bool = False
    require_temperature: bool = False
    capacity_factor: float = Field(default=1.0, ge=0.001, le=1)  # stored to three decimals
    labs_named_only: bool = False
    trips_need_approval: bool = False  # campus-wide: planned trips wait for a liaison
    # Zones whose doors admit only people who made today's check-in (checkin_required).
    checkin_zones: list[ZoneId] = Field(default_factory=list, max_length=500)


@router.get("", response_model=LevelsInForce)
async def current(_: CurrentOperator, conn: Conn) -> dict[str, Any]:
    """The campus-wide level, zones with their own level, and the definitions."""
    return await service.current(conn)


@router.get("/history", response_model=list[LevelHistoryEntry])
async def history(
    _: CurrentOperator,
    conn: Conn,
    zone: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Every change of an active level, newest first."""
    return await service.history(conn, zone_id=zone, limit=limit, offset=offset)


@router.put("")
async def set_level(body: LevelChange, operator: Setter, conn: Conn) -> dict[str, Any]:
    """Set a level; the doors follow within a second. Returns the changes and what is in force."""
    changes = await service.set_level(
        conn, body.level, body.zones, by=operator.name, note=body.note
    )
    return {"changes": changes, **await service.current(conn)}


@router.put("/definitions/{name}")
async def define(
    name: Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,40}$")],
    body: LevelDefinition,
    operator: Admin,
    conn: Conn,
) -> dict[str, Any]:
    """Create or edit a level definition (administrators)."""
    level = ResponseLevel(
        name,
        LevelRules(
            bar_visitors=body.bar_visitors,
            require_temperature=body.require_temperature,
            capacity_factor=round(body.capacity_factor, 3),
            labs_named_only=body.labs_named_only,
            trips_need_approval=body.trips_need_approval,
            checkin_zones=frozenset(body.checkin_zones),
        ),
        body.rank,
        body.title_zh,
        body.title_en,
        body.description,
    )
    return await service.define_level(conn, level, by=operator.name)
