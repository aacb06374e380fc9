"""Request bodies of the administrators' roster changes (their errors: api/errors.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.deps import Allowed
from api.permissions import Permission
from gateway.domain.cards import normalize_card_uid
from gateway.domain.roster import (
    CapacityMode,
    DeviceKind,
    DoorDirection,
    PersonKind,
    SerialProtocol,
    Transport,
    ZoneKind,
)

Admin = Allowed(Permission.WRITE_ROSTER)

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Name = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
Ref = Annotated[str | None, Field(default=None, min_length=1, max_length=200)]
CardUid = Annotated[str, Field(max_length=64), AfterValidator(normalize_card_uid)]
Protocol = Annotated[
    str | None, Field(default=None, pattern=f"^({'|'.join(p.value for p in SerialProtocol)})$")
]
Capacity = Annotated[int | None, Field(default=None, ge=0, le=2**31 - 1)]
Threshold = Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)]
Minutes = Annotated[int, Field(ge=0, le=1440)]
Baud = Annotated[int | None, Field(default=None, ge=1, le=2**31 - 1)]
Text = Annotated[str | None, Field(default=None, max_length=500, pattern=r"^[^\x00]*$")]


def _storable(value: datetime) -> datetime:
    # 9999-12-31T23:59-14:00 parses, but its UTC form lies past year 9999: the driver
    # cannot encode it (an OverflowError on the COPY path, a 500 before this check).
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("time out of range (years 1-9999 in UTC)") from None
    return value


Moment = Annotated[datetime, AfterValidator(_storable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgUnitIn(_Body):
    id: Id
    name: Name
    parent_id: Ref = None


class OrgUnitPatch(_Body):
    name: Name | None = None
    parent_id: Ref = None


class ZoneIn(_Body):
    id: Id
    name: Name
    kind: ZoneKind
    capacity: Capacity = None
    capacity_mode: CapacityMode = CapacityMode.ENFORCE
    gathering_threshold: Threshold = None
    gathering_minutes: Minutes = 10


class ZonePatch(_Body):
    name: Name | None = None
    kind: ZoneKind | None = None
    capacity: Capacity = None
    capacity_mode: CapacityMode | None = None
    gathering_threshold: Threshold = None
    gathering_minutes: Minutes | None = None


class DoorIn(_Body):
    id: Id
    zone_id: Id
    direction: DoorDirection = DoorDirection.BOTH
    requires_temperature: bool = False
    name: Text = None


class DoorPatch(_Body):
    zone_id: Id | None = None
    direction: DoorDirection | None = None
    requires_temperature: bool | None = None
    name: Text = None


class DeviceIn(_Body):
    id: Id
    door_id: Id
    kind: DeviceKind
    transport: Transport = Transport.MQTT
    port: Text = None
    protocol: Protocol = None
    baud: Baud = None


class DevicePatch(_Body):
    door_id: Id | None = None
    kind: DeviceKind | None = None
    transport: Transport | None = None
    port: Text = None
    protocol: Protocol = None
    baud: Baud = None


class PersonIn(_Body):
    id: Id
    kind: PersonKind
    name: Name
    org_unit_id: Ref = None
    active: bool = True
    valid_until: Moment | None = None
    cards: list[CardUid] = Field(default_factory=list, max_length=20)


class PersonPatch(_Body):
    kind: PersonKind | None = None
    name: Name | None = None
    org_unit_id: Ref = None
    active: bool | None = None
    valid_until: Moment | None = None


class CardIn(_Body):
    uid: CardUid
    valid_until: Moment | None = None


# Fields that may not be set to null by a patch (the others, e.g. parent_id, may).
_REQUIRED = frozenset(
    {
        "name",
        "kind",
        "zone_id",
        "door_id",
        "direction",
        "transport",
        "active",
        "capacity_mode",
        "gathering_minutes",
    }
)


def changes(patch: BaseModel) -> dict[str, Any]:
    """The fields a patch sets, as stored values; 422 for a required field set to null."""
    values = patch.model_dump(exclude_unset=True, mode="json")
    for field, value in values.items():
        if value is None and field in _REQUIRED:
            raise HTTPException(
                422, [{"loc": ["body", field], "msg": f"{field} may not be null", "type": "null"}]
            )
    if "valid_until" in values and values["valid_until"] is not None:
        values["valid_until"] = patch.valid_until
    return values


def values_of(body: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    values = body.model_dump(mode="json", exclude=exclude)
    if "valid_until" in values:
        values["valid_until"] = body.valid_until
    return values
