"""The campus: org units, zones, doors, devices, people, cards and grants."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from gateway.domain.schedule import Schedule


class ZoneKind(StrEnum):
    DORMITORY = "dormitory"
    LAB = "lab"
    OFFICE = "office"
    TEACHING = "teaching"
    GATE = "gate"
    OTHER = "other"


class CapacityMode(StrEnum):
    """At capacity: `enforce` denies with zone_full, `alert` admits and raises zone_full."""

    ENFORCE = "enforce"
    ALERT = "alert"


class DoorDirection(StrEnum):
    IN = "in"
    OUT = "out"
    BOTH = "both"


class DeviceKind(StrEnum):
    TERMINAL = "terminal"
    CARD_READER = "card_reader"
    TEMPERATURE_SCANNER = "temperature_scanner"
    THERMAL_CAMERA = "thermal_camera"


class Transport(StrEnum):
    MQTT = "mqtt"
    SERIAL = "serial"


class SerialProtocol(StrEnum):
    """A serial reader's wire protocol (a device's `protocol`); each has a codec in
    devices/codecs/serial_codecs.py, so a new one is an entry here and a codec there."""

    RDM6300 = "rdm6300"
    WIEGAND = "wiegand"
    OSDP = "osdp"


class PersonKind(StrEnum):
    STUDENT = "student"
    STAFF = "staff"
    VISITOR = "visitor"


@dataclass(frozen=True, slots=True)
class OrgUnit:
    id: str
    name: str
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str
    kind: ZoneKind
    capacity: int | None = None
    capacity_mode: CapacityMode = CapacityMode.ENFORCE
    # A gathering alert when at least this many people stay inside this many minutes.
    gathering_threshold: int | None = None
    gathering_minutes: int = 10


# The manifest's zone fields, which are also the zones table's columns.
ZONE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Zone))


@dataclass(frozen=True, slots=True)
class Door:
    id: str
    zone_id: str
    direction: DoorDirection = DoorDirection.BOTH
    requires_temperature: bool = False
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    door_id: str
    kind: DeviceKind
    transport: Transport = Transport.MQTT
    port: str | None = None
    protocol: str | None = None
    baud: int | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    kind: PersonKind
    name: str
    org_unit_id: str | None = None
    active: bool = True
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Card:
    uid: str  # canonical form, see gateway.domain.cards
    person_id: str
    revoked: bool = False
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class GrantSubject:
    """Exactly one of person, org unit (and everything under it) or person kind."""

    person_id: str | None = None
    org_unit_id: str | None = None
    kind: PersonKind | None = None

    def key(self) -> str:
        if self.person_id is not None:
            return f"person:{self.person_id}"
        if self.org_unit_id is not None:
            return f"org_unit:{self.org_unit_id}"
        assert self.kind is not None
        return f"kind:{self.kind.value}"


@dataclass(frozen=True, slots=True)
class Grant:
    subject: GrantSubject
    zone_id: str
    schedule: Schedule | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
