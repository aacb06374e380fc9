"""Response levels: what is in force, the definitions, the change history."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp


class ActiveLevel(BaseModel):
    zone_id: str | None = Field(description="null: campus-wide")
    zone_name: str | None
    level: str
    set_by: str
    set_at: Timestamp
    note: str


class LevelDefinition(BaseModel):
    name: str
    rank: int
    title_zh: str
    title_en: str
    description: str
    bar_visitors: bool
    require_temperature: bool
    capacity_factor: float
    labs_named_only: bool
    trips_need_approval: bool
    checkin_zones: list[str] = []
    updated_by: str
    updated_at: Timestamp


class LevelsInForce(BaseModel):
    campus: ActiveLevel | None
    zones: list[ActiveLevel] = Field(description="zones with a level of their own")
    definitions: list[LevelDefinition]


class LevelHistoryEntry(BaseModel):
    id: int
    changed_at: Timestamp
    changed_by: str
    zone_id: str | None = Field(description="null: campus-wide")
    from_level: str | None = Field(description="null: the zone had no level of its own")
    to_level: str | None = Field(description="null: the zone's own level was cleared")
    note: str
