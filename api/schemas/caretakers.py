"""Caretakers and the people in their care (no health reasons here)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp
from gateway.domain.health import HealthStatus


class CaretakerCase(BaseModel):
    caretaker_id: str | None = Field(description="null: nobody assigned")
    caretaker_name: str | None
    person_id: str
    name: str
    org_unit_id: str | None
    status: HealthStatus
    since: Timestamp
    until: Timestamp | None
    phone: str | None = Field(description="masked unless asked for with `unmask` (audited)")
    last_breach_at: Timestamp | None = Field(description="the last isolation breach since")
    last_breach_door: str | None
    last_breach_direction: str | None
    day: int = Field(description="the day of isolation, campus-local (1 on the first)")


class CaretakerLoad(BaseModel):
    caretaker_id: str | None = Field(description="null: the people nobody is assigned to")
    caretaker_name: str | None
    cases: int
    longest_day: int
