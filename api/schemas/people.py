"""People: one shape for roles that may read health details, one for those that may not."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp
from gateway.domain.health import HealthStatus
from gateway.domain.roster import PersonKind


class Person(BaseModel):
    """A person as every reader sees them: without health details."""

    id: str
    kind: PersonKind
    name: str
    org_unit_id: str | None
    active: bool
    valid_until: Timestamp | None
    phone: str | None = Field(description="masked unless `contact_masked` is false")
    id_number: str | None = Field(description="masked unless `contact_masked` is false")
    cards: list[str]
    contact_masked: bool
    health_hold: bool = Field(description="whether a health status bars entry now")


class PersonWithHealth(Person):
    """A person as roles that may read health details (READ_HEALTH) see them."""

    health_status: HealthStatus | None
    health_since: Timestamp | None
    health_until: Timestamp | None
    health_reason: str | None
    health_caretaker: str | None


# The more detailed shape first: an answer is the first that fits.
PersonView = PersonWithHealth | Person


class PeoplePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PersonView]
