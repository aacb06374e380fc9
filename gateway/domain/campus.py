"""The whole roster as loaded from the store, and the rows of the access log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.domain.health import HealthRecord
from gateway.domain.levels import ActiveLevels, ResponseLevel
from gateway.domain.roster import Card, Device, Door, Grant, OrgUnit, Person, Zone


@dataclass(frozen=True, slots=True)
class CampusRoster:
    """Everything a decision needs, as plain domain objects (the store builds it)."""

    org_units: tuple[OrgUnit, ...] = ()
    zones: tuple[Zone, ...] = ()
    doors: tuple[Door, ...] = ()
    devices: tuple[Device, ...] = ()
    people: tuple[Person, ...] = ()
    cards: tuple[Card, ...] = ()
    grants: tuple[Grant, ...] = ()
    health: tuple[HealthRecord, ...] = ()
    levels: tuple[ResponseLevel, ...] = ()  # the defined response levels
    active_levels: ActiveLevels = field(default_factory=ActiveLevels)
    # (person id, campus day of their latest check-in) for recent check-ins (issue #15).
    checkins: tuple[tuple[str, date], ...] = ()


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One row of the access log: a card, temperature or door event and what came of it.

    `received_at` is the event's time in the log, the one tracing, occupancy and
    reports read: the device's `ts` when plausible, else `gateway_ts`, when the
    gateway received it (contract section 3; gateway/pipeline/device_clocks.py).
    """

    device_id: str
    event_id: str
    type: EventType
    device_ts: datetime
    received_at: datetime
    door_id: str | None = None
    zone_id: str | None = None
    person_id: str | None = None
    card_uid: str | None = None
    direction: Direction | None = None
    celsius: float | None = None
    verdict: Verdict | None = None
    reason: Reason | None = None
    decided_at: datetime | None = None
    latency_us: int | None = None
    detail: dict[str, object] = field(default_factory=dict)
    gateway_ts: datetime | None = None  # None: the same as received_at (rows before migration 0016)
