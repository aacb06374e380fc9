"""Normalized device events (contract section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventType(StrEnum):
    CARD = "card"
    TEMPERATURE = "temperature"
    THERMAL_FRAME = "thermal_frame"
    DOOR = "door"
    HEARTBEAT = "heartbeat"
    # Not in the contract's table (issue #15): a visitor pass's QR token, read by a scanner.
    QR = "qr"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class DoorState(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    FORCED = "forced"
    HELD_OPEN = "held_open"


@dataclass(frozen=True, slots=True)
class CardEvent:
    device_id: str
    event_id: str
    ts: datetime
    card_uid: str
    direction: Direction | None = None
    celsius: float | None = None
    type: EventType = EventType.CARD


@dataclass(frozen=True, slots=True)
class TemperatureEvent:
    device_id: str
    event_id: str
    ts: datetime
    celsius: float
    card_uid: str | None = None
    type: EventType = EventType.TEMPERATURE


@dataclass(frozen=True, slots=True)
class ThermalFrameEvent:
    device_id: str
    event_id: str
    ts: datetime
    width: int
    height: int
    celsius_f32le: bytes
    card_uid: str | None = None
    type: EventType = EventType.THERMAL_FRAME


@dataclass(frozen=True, slots=True)
class QrEvent:
    """A scanned visitor QR token; the gateway verifies it and decides it as a card."""

    device_id: str
    event_id: str
    ts: datetime
    token: str
    direction: Direction | None = None
    type: EventType = EventType.QR


@dataclass(frozen=True, slots=True)
class DoorEvent:
    device_id: str
    event_id: str
    ts: datetime
    state: DoorState
    type: EventType = EventType.DOOR


@dataclass(frozen=True, slots=True)
class HeartbeatEvent:
    device_id: str
    event_id: str
    ts: datetime
    uptime_s: float | None = None
    firmware: str | None = None
    type: EventType = EventType.HEARTBEAT


DeviceEvent = (
    CardEvent | TemperatureEvent | ThermalFrameEvent | DoorEvent | HeartbeatEvent | QrEvent
)
