"""Health statuses (read only by roles with READ_HEALTH)."""

from __future__ import annotations

from pydantic import BaseModel, Field

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


class HealthCurrent(BaseModel):
    """The stored status, with the names of the person and the caretaker."""

    person_id: str
    status: HealthStatus
    since: Timestamp
    until: Timestamp | None
    reason: str
    caretaker_id: str | None
    set_by: str | None
    person_name: str | None
    caretaker_name: str | None


class HealthChange(BaseModel):
    """One status the person had, who changed it to that and when."""

    status: HealthStatus
    since: Timestamp
    until: Timestamp | None
    reason: str
    caretaker_id: str | None
    set_by: str | None
    changed_by: str
    changed_at: Timestamp
    caretaker_name: str | None


class Reading(BaseModel):
    """A manual re-measurement."""

    id: int
    person_id: str
    celsius: float
    fever: bool
    measured_at: Timestamp
    recorded_by: str
    note: str


class PersonHealth(BaseModel):
    person_id: str
    current: HealthCurrent | None = Field(description="null: never had a status (clear)")
    history: list[HealthChange]
    readings: list[Reading]


class FeverWatchEntry(BaseModel):
    """Someone awaiting a re-measurement, as guards see them: no reason, no temperatures."""

    person_id: str
    name: str
    org_unit_id: str | None
    since: Timestamp
    readings: int = Field(description="re-measurements since the watch began")


class FeverReviewEntry(BaseModel):
    """Someone on fever_watch with the readings taken since the watch began."""

    person_id: str
    name: str
    org_unit_id: str | None
    since: Timestamp
    readings: list[Reading]
