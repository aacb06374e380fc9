"""Caretakers and the people in their care (no health reasons here)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas.common import Timestamp
from gateway.domain.care import NOTE_MAX, Channel, Feeling, FollowUp
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


class FollowUpCase(BaseModel):
    """A current isolation case and whether it has gone without contact."""

    person_id: str
    name: str
    org_unit_id: str | None
    status: HealthStatus
    since: Timestamp
    day: int = Field(description="the day of isolation, campus-local (1 on the first)")
    caretaker_id: str | None
    caretaker_name: str | None
    last_contact_at: Timestamp | None = Field(description="null: none recorded in this case")
    follow_up: FollowUp | None = Field(
        description="who must be told the case has gone quiet: `caretaker` after a day "
        "without a recorded contact, `health_officer` after two; null: in touch"
    )


class CareContactIn(BaseModel):
    """One contact with a person in isolation, as the caretaker reports it."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    at: AwareDatetime | None = Field(
        None, description="when it happened, with its offset; default: now"
    )
    feeling: Feeling = Field(description="how the person says they are")
    temperature_c: float | None = Field(
        None, description="the temperature the person reports (34.0-43.0), if any"
    )
    note: str = Field("", max_length=NOTE_MAX)


class CareContactOut(BaseModel):
    id: int
    person_id: str
    caretaker_id: str | None
    channel: Channel
    at: Timestamp
    feeling: Feeling
    temperature_c: float | None
    note: str
    recorded_by: str
    recorded_at: Timestamp


class CaseContacts(BaseModel):
    """A case with its contacts since it began, newest first."""

    case: FollowUpCase
    contacts: list[CareContactOut]
