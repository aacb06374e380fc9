"""Org units and zones."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.domain.roster import CapacityMode, ZoneKind


class OrgUnit(BaseModel):
    id: str
    name: str
    parent_id: str | None


class Zone(BaseModel):
    id: str
    name: str
    kind: ZoneKind
    capacity: int | None
    capacity_mode: CapacityMode
    gathering_threshold: int | None
    gathering_minutes: int
