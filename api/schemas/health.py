"""Health statuses (read only by roles with READ_HEALTH)."""

from __future__ import annotations

from pydantic import BaseModel

from api.schemas.common import Timestamp
from gateway.domain.health import HealthStatus


class HealthListing(BaseModel):
    person_id: str
    name: str
    org_unit_id: str | None
    status: HealthStatus
    since: Timestamp
    until: Timestamp | None
    reason: str | None
    caretaker_id: str | None
    caretaker_name: str | None
    set_by: str | None
