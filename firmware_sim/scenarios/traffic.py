"""Continuous door traffic for the demo: a realistic mix of comings and goings, with
now and then an outsider, a fever or a forced door."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim.campus import CampusFacts, SimPerson
from firmware_sim.fleet import Fleet
from firmware_sim.scenarios.checks import FEVER_C, INVALID_C

# ---- continuous traffic for the demo -----------------------------------------------


@dataclass(slots=True)
class TrafficStats:
    """What `traffic` sent, by kind of action, and the card events it sent per device."""

    actions: Counter[str] = field(default_factory=Counter)
    card_events: list[tuple[str, str]] = field(default_factory=list)  # (device id, event id)

    def decided(self, fleet: Fleet) -> int:
        return sum(1 for device, eid in self.card_events if eid in fleet[device].decided_at)


class _Mix:
    """Picks realistic actions; remembers who is inside which zone so exits make sense."""

    WEIGHTS = (
        ("dorm_in", 25.0),
        ("dorm_out", 18.0),
        ("gate_in", 14.0),
        ("gate_out", 10.0),
        ("teaching", 12.0),
        ("lab", 8.0),
        ("office", 6.0),
        ("door_cycle", 3.0),
        ("outsider", 1.2),
        ("unauthorized", 1.2),
        ("inactive", 0.6),
        ("temperature_invalid", 0.5),
        ("isolation_breach", 0.4),
        ("fever", 0.25),
        ("door_forced", 0.1),
    )

    def __init__(self, fleet: Fleet, facts: CampusFacts, rng: random.Random) -> None:
        self.fleet = fleet
        self.facts = facts
        self.rng = rng
        reserved = set(facts.fever_cards)
        ok = [p for p in facts.people if p.active and not p.isolated and p.cards[0] not in reserved]
        self.students = [p for p in ok if p.kind == "student"]
        self.staff = [p for p in ok if p.kind == "staff"]
        self.everyone = [p for p in ok if p.kind != "visitor"]
        self.inactive = [p for p in facts.people if not p.active]
        self.isolated = [p for p in facts.people if p.isolated]
        self.fevers = list(facts.fever_cards)
        self.inside: dict[str, list[SimPerson]] = {}
        self.kinds = [k for k, _ in self.WEIGHTS]
        self.weights = [w for _, w in self.WEIGHTS]
        self.labs = [z for z, kind in facts.zone_kinds.items() if kind == "lab"]
        self.teaching = [z for z, kind in facts.zone_kinds.items() if kind == "teaching"]
        self.offices = [z for z, kind in facts.zone_kinds.items() if kind == "office"]

    def pick(self) -> str:
        return self.rng.choices(self.kinds, self.weights)[0]

    def door_of(self, zone: str, direction: str) -> str | None:
        """A door of `zone` that lets one pass in `direction`, and whose terminal we run."""
        doors = [
            d
            for d, z in self.facts.door_zones.items()
            if z == zone and self.facts.door_directions[d] in (direction, "both")
        ]
        for door in doors:
            if f"term-{door}" in self.fleet:
                return door
        return None

    def enter(self, zone: str, person: SimPerson) -> None:
        self.inside.setdefault(zone, []).append(person)

    def leaver(self, zone: str) -> SimPerson | None:
        people = self.inside.get(zone)
        if not people:
            return None
        return people.pop(self.rng.randrange(len(people)))


def _normal_reading(rng: random.Random) -> float:
    return round(min(37.1, max(35.8, rng.gauss(36.5, 0.25))), 1)


async def traffic(
    fleet: Fleet,
    facts: CampusFacts,
    rate_per_s: float,
    stop_event: asyncio.Event,
    *,
    seed: int | None = None,
    heartbeat_every_s: float = 30.0,
    stats: TrafficStats | None = None,
) -> TrafficStats:
    """Play a realistic mix of door traffic at about `rate_per_s` actions per second.

    Mostly residents, staff and students coming and going (with temperature at the
    dormitory main doors, in all three orders), and now and then an outsider, an
    unauthorized student, an inactive card, a bad reading, an isolation breach, a
    fever (each reserved fever card once) or a forced door. Runs until `stop_event`.
    Pass `stats` to watch the counts while it runs. Doors whose terminal is not in
    `fleet` are skipped, so a fleet of some of the campus's devices works too.
    """
    rng = random.Random(seed)
    mix = _Mix(fleet, facts, rng)
    stats = stats if stats is not None else TrafficStats()
    background: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
    next_due = loop.time()
    next_heartbeat = loop.time() + heartbeat_every_s
    try:
        while not stop_event.is_set():
            action = mix.pick()
            if _play(action, mix, stats, background):
                stats.actions[action] += 1
            if loop.time() >= next_heartbeat:
                for terminal in fleet:
                    if terminal.is_connected:
                        terminal.heartbeat()
                next_heartbeat += heartbeat_every_s
            next_due += interval
            delay = next_due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), delay)
            else:
                await asyncio.sleep(0)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    return stats


def _swipe(
    mix: _Mix,
    stats: TrafficStats,
    door: str | None,
    card: str,
    *,
    direction: str | None = None,
    celsius: float | None = None,
) -> bool:
    if door is None:
        return False
    device = f"term-{door}"
    terminal = mix.fleet.get(device)
    if terminal is None or not terminal.is_connected:
        return False
    eid = terminal.swipe(card, direction=direction, celsius=celsius)
    stats.card_events.append((device, eid))
    return True


def _temperature_entry(
    mix: _Mix,
    stats: TrafficStats,
    background: set[asyncio.Task[None]],
    door: str,
    card: str,
    celsius: float,
) -> bool:
    """Card and reading at a temperature door, in one of the three orders a person uses."""
    rng = mix.rng
    terminal = mix.fleet.get(f"term-{door}")
    if terminal is None:
        return False
    scanner_id = f"scan-{door}"
    scanner = mix.fleet.get(scanner_id) or terminal
    style = rng.random()
    if style < 0.3:
        return _swipe(mix, stats, door, card, celsius=celsius)
    if style < 0.6:
        scanner.measure(celsius)
        return _swipe(mix, stats, door, card)
    if not _swipe(mix, stats, door, card):
        return False
    bound = card if rng.random() < 0.5 else None

    async def measure_later() -> None:
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        if scanner.is_connected:
            scanner.measure(celsius, card_uid=bound)

    task = asyncio.create_task(measure_later())
    background.add(task)
    task.add_done_callback(background.discard)
    return True


Background = set[asyncio.Task[None]]


def _dorm_in(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    rng, facts = mix.rng, mix.facts
    person = rng.choice(mix.students)
    door = mix.door_of(person.dorm or facts.dorm, "in")
    if door is None:
        return False
    mix.enter(person.dorm or facts.dorm, person)
    if door in facts.temperature_doors:
        return _temperature_entry(
            mix, stats, background, door, person.cards[0], _normal_reading(rng)
        )
    return _swipe(mix, stats, door, person.cards[0])


def _dorm_out(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    rng = mix.rng
    dorm = rng.choice([z for z, k in mix.facts.zone_kinds.items() if k == "dormitory"])
    person = mix.leaver(dorm) or rng.choice(
        [p for p in mix.students if p.dorm == dorm] or mix.students
    )
    return _swipe(mix, stats, mix.door_of(dorm, "out"), person.cards[-1], direction="out")


def _gate_in(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    person = mix.rng.choice(mix.everyone)
    mix.enter("gate", person)
    return _swipe(mix, stats, mix.door_of("gate", "in"), person.cards[0], direction="in")


def _gate_out(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    person = mix.leaver("gate") or mix.rng.choice(mix.everyone)
    return _swipe(mix, stats, mix.door_of("gate", "out"), person.cards[0], direction="out")


def _door_cycle(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    door = mix.rng.choice(list(mix.facts.door_zones))
    terminal = mix.fleet.get(f"term-{door}")
    if terminal is None or not terminal.is_connected:
        return False
    terminal.door("opened")
    terminal.door("held_open" if mix.rng.random() < 0.05 else "closed")
    return True


def _door_forced(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    door = mix.rng.choice(list(mix.facts.door_zones))
    terminal = mix.fleet.get(f"term-{door}")
    if terminal is None:
        return False
    terminal.door("forced")
    return True


def _outsider(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    return _swipe(mix, stats, mix.facts.gate_door, mix.facts.outsider_card)


def _unauthorized(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    facts = mix.facts
    return _swipe(mix, stats, facts.lab_door, facts.lab_stranger_card, direction="in")


def _inactive(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    if not mix.inactive:
        return False
    return _swipe(mix, stats, mix.facts.gate_door, mix.rng.choice(mix.inactive).cards[0])


def _temperature_invalid(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    card = mix.rng.choice(mix.facts.resident_cards)
    return _swipe(mix, stats, mix.facts.temperature_door, card, celsius=INVALID_C)


def _isolation_breach(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    if not mix.isolated:
        return False
    person = mix.rng.choice(mix.isolated)
    door = mix.door_of(person.dorm, "in") if person.dorm else mix.facts.gate_door
    return _swipe(mix, stats, door, person.cards[0], celsius=_normal_reading(mix.rng))


def _fever(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    facts = mix.facts
    if not mix.fevers or facts.temperature_device not in mix.fleet:
        return False
    card = mix.fevers.pop(0)
    return _temperature_entry(mix, stats, background, facts.temperature_door, card, FEVER_C)


def _teaching(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    return _come_or_go("teaching", mix, stats)


def _lab(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    return _come_or_go("lab", mix, stats)


def _office(mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    return _come_or_go("office", mix, stats)


# Every action of `_Mix.WEIGHTS`; each says whether it sent anything.
ACTIONS: dict[str, Callable[[_Mix, TrafficStats, Background], bool]] = {
    "dorm_in": _dorm_in,
    "dorm_out": _dorm_out,
    "gate_in": _gate_in,
    "gate_out": _gate_out,
    "teaching": _teaching,
    "lab": _lab,
    "office": _office,
    "door_cycle": _door_cycle,
    "door_forced": _door_forced,
    "outsider": _outsider,
    "unauthorized": _unauthorized,
    "inactive": _inactive,
    "temperature_invalid": _temperature_invalid,
    "isolation_breach": _isolation_breach,
    "fever": _fever,
}


def _play(action: str, mix: _Mix, stats: TrafficStats, background: Background) -> bool:
    return ACTIONS[action](mix, stats, background)


def _come_or_go(kind: str, mix: _Mix, stats: TrafficStats) -> bool:
    rng = mix.rng
    zones = {"teaching": mix.teaching, "lab": mix.labs, "office": mix.offices}[kind]
    if not zones:
        return False
    zone = rng.choice(zones)
    leaving = mix.leaver(zone) if rng.random() < 0.5 else None
    if leaving is not None:
        return _swipe(mix, stats, mix.door_of(zone, "out"), leaving.cards[0], direction="out")
    if kind == "lab":
        college = zone.split("-")[1]
        pool = [p for p in mix.everyone if p.college == college]
    elif kind == "office":
        pool = mix.staff
    else:
        pool = mix.everyone
    if not pool:
        return False
    person = rng.choice(pool)
    mix.enter(zone, person)
    return _swipe(mix, stats, mix.door_of(zone, "in"), person.cards[0], direction="in")
