"""Occupancy per zone and the muster list."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp
from gateway.domain.roster import CapacityMode, PersonKind, ZoneKind


class ZoneOccupancy(BaseModel):
    zone_id: str
    name: str
    kind: ZoneKind
    capacity: int | None = Field(description="as configured")
    capacity_mode: CapacityMode
    gathering_threshold: int | None
    gathering_minutes: int
    inside: int = Field(description="people inside now (within the presence horizon)")
    effective_capacity: int | None = Field(description="as in force under the active levels")
    levels: list[str] = Field(description="the response levels in force here, campus-wide first")
    full: bool
    gathering: bool = Field(description="at least gathering_threshold people inside")


class PersonInside(BaseModel):
    """One line of a muster list."""

    person_id: str
    name: str
    kind: PersonKind
    org_unit_id: str | None
    org_unit_name: str | None
    since: Timestamp = Field(description="when they entered")
    door_id: str | None
    door_name: str | None
