"""What a generated campus is: its people and the ground truth scenarios rely on.

Kept apart from the generator (`firmware_sim.campus`) so the scenarios, the demo and
the tests can name these types without the generator's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SimPerson:
    """Who a generated person is, as the traffic generator needs it."""

    id: str
    kind: str  # student | staff | visitor
    org_unit: str
    cards: tuple[str, ...]
    college: str | None = None
    dorm: str | None = None
    active: bool = True
    isolated: bool = False


@dataclass(frozen=True, slots=True)
class CampusFacts:
    """Ground truth of a generated campus, for scenarios and tests.

    Every card named here is chosen so that exactly one contract check decides it:
    `resident_cards` are active, healthy students granted the dormitory of
    `temperature_door`; `isolated_card` is such a resident in home isolation, and so on.
    """

    seed: int
    temperature_door: str  # a dormitory main door: direction in, requires_temperature
    temperature_device: str
    dorm: str
    dorm_exit_door: str
    dorm_exit_device: str
    resident_cards: tuple[str, ...]  # healthy residents of `dorm`, for normal traffic
    fever_cards: tuple[str, ...]  # further healthy residents, reserved for fevers
    outsider_card: str  # held by nobody
    isolated_person: str
    isolated_card: str  # a resident of `dorm` in home_isolation
    caretaker: str
    inactive_person: str
    inactive_card: str  # a resident of `dorm` whose person is inactive
    gate_door: str  # the main gate, direction in, no temperature
    gate_device: str
    gate_exit_door: str
    gate_exit_device: str
    lab: str
    lab_door: str  # direction both; granted to `lab_college` Mon-Fri 07:00-23:00
    lab_device: str
    lab_college: str
    lab_member_card: str  # a student of `lab_college` (admitted only within the schedule)
    lab_stranger_card: str  # an active, healthy student of another college: not_authorized
    office_door: str
    office_device: str
    staff_card: str  # active, healthy staff: admitted at `office_door` at any time
    visitor_card: str  # active visitor: admitted at the gate only
    scanner_device: str | None  # a separate temperature_scanner at `temperature_door`, if any
    device_doors: dict[str, str] = field(default_factory=dict)  # device id -> door id
    door_zones: dict[str, str] = field(default_factory=dict)  # door id -> zone id
    door_directions: dict[str, str] = field(default_factory=dict)
    temperature_doors: frozenset[str] = frozenset()
    zone_kinds: dict[str, str] = field(default_factory=dict)
    people: tuple[SimPerson, ...] = ()

    @property
    def mqtt_devices(self) -> tuple[str, ...]:
        return tuple(self.device_doors)


@dataclass(frozen=True, slots=True)
class Campus:
    manifest: dict[str, list[dict[str, Any]]]
    facts: CampusFacts
