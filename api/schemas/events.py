"""The access log: temperatures only for roles that may read health details."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp


class AccessEvent(BaseModel):
    """A logged event as every reader sees it: without a temperature."""

    device_id: str
    event_id: str
    type: str
    device_ts: Timestamp
    received_at: Timestamp
    door_id: str | None
    zone_id: str | None
    person_id: str | None
    card_uid: str | None
    direction: str | None
    decision: str | None
    reason: str | None = Field(
        description="the decision's reason; `withheld` for a health reason when the role"
        " sees no health alerts"
    )


class AccessEventWithTemperature(AccessEvent):
    """A logged event as roles that may read health details (READ_HEALTH) see it."""

    celsius: float | None


# The more detailed shape first: an answer is the first that fits.
AccessEventView = AccessEventWithTemperature | AccessEvent
