"""A simulated campus week that knows who was where: ground truth for contact tracing.

`simulate(people=5000, days=7)` moves students and staff between dormitory floors,
labs, lecture buildings, offices and canteen halls on daily schedules. Per day it
gives the true presence intervals (`Visit`) and the access-log rows the doors would
have produced (`AccessRecord`): an `in` passage at every entry, an `out` passage at
every exit where the zone has an exit reader. Lecture buildings have none (one-way
doors), so tracing must fall back to entry proximity there. Noise: a small share of
exits go unswiped (forgotten or tailgated), and some people try a door they may not
pass (denied, so they never entered).

Day 0 only sets the scene (everyone's first dormitory night begins there): trace
from `week.window_start`, the start of day 1.
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType

CAMPUS_TZ = timezone(timedelta(hours=8))
MIN_OVERLAP_S = 60.0  # the same threshold as gateway.domain.tracing.MIN_OVERLAP_S
H = 3600.0
M = 60.0

# (start, end, kind) of a weekday, in hours of campus time.
CLASS_SLOTS = ((8.0, 9.583), (10.0, 11.583), (14.0, 15.583), (16.0, 17.583), (19.0, 20.583))
SURNAMES = ("Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu")
GIVEN = ("Hua", "Wei", "Fang", "Min", "Jing", "Lei", "Qiang", "Yan", "Jun", "Jie", "Tao", "Ning")
MEALS = ((7.0, 8.0), (11.67, 13.0), (17.67, 19.0))


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    kind: str  # dormitory | lab | office | teaching | other (canteen)
    two_way: bool  # an exit reader logs `out` passages

    @property
    def entry_device(self) -> str:
        return f"term-{self.id}-in"

    @property
    def exit_device(self) -> str:
        return f"term-{self.id}-out"


@dataclass(frozen=True, slots=True)
class Visit:
    """A person truly inside a zone from `start` to `end` (epoch seconds)."""

    person_id: str
    zone_id: str
    start: float
    end: float


@dataclass(slots=True)
class Person:
    id: str
    kind: str  # student | staff
    card: str
    home: str  # dormitory floor (students) or office (staff)
    lab: str | None
    canteen: str
    name: str = ""
    timetable: dict[tuple[int, int], str] = field(default_factory=dict)  # (weekday, slot) -> bldg


@dataclass(frozen=True, slots=True)
class NoiseRates:
    forgotten_out: float = 0.005  # an exit without a swipe (the person still left)
    denied_attempt: float = 0.01  # per person-day: a door that refuses them


@dataclass
class SimulatedWeek:
    """The campus, its people, and per simulated day the truth and the log rows."""

    zones: dict[str, Zone]
    people: list[Person]
    start: datetime  # day 0, 00:00 campus time
    days: int
    seed: int
    noise: NoiseRates = field(default_factory=NoiseRates)
    # Derived from `zones` (in their order): canteen halls and labs, drawn from by the days.
    canteens: list[str] = field(init=False)
    labs: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.canteens = [z.id for z in self.zones.values() if z.kind == "other"]
        self.labs = [z.id for z in self.zones.values() if z.kind == "lab"]

    @property
    def window_start(self) -> datetime:
        return self.start + timedelta(days=1)

    @property
    def window_end(self) -> datetime:
        return self.start + timedelta(days=1 + self.days)

    def iter_days(self) -> Iterator[tuple[list[Visit], list[AccessRecord]]]:
        """Day by day (day 0 through the morning after the last day): visits and log rows."""
        rng = random.Random(self.seed * 7919 + 1)
        counters: dict[str, int] = defaultdict(int)
        last_out: dict[str, float] = {}
        for day in range(self.days + 2):
            visits: list[Visit] = []
            records: list[AccessRecord] = []
            midnight = (self.start + timedelta(days=day)).timestamp()
            weekday = (self.start + timedelta(days=day)).weekday()
            final = day == self.days + 1  # only the morning: close the last dormitory night
            for person in self.people:
                plan = _day_plan(person, self, weekday, midnight, rng, morning_only=final)
                _emit_day(person, plan, self, rng, last_out, counters, visits, records, day)
            records.sort(key=lambda r: r.received_at)
            yield visits, records

    def visits(self) -> list[Visit]:
        return [v for day_visits, _ in self.iter_days() for v in day_visits]


def _hour(midnight: float, hours: float) -> float:
    return midnight + hours * H


def _day_plan(
    person: Person,
    week: SimulatedWeek,
    weekday: int,
    midnight: float,
    rng: random.Random,
    *,
    morning_only: bool,
) -> list[tuple[str, float, float]]:
    """The day's outings (zone, in, out), chronological and apart by a walk."""
    if morning_only:
        return []
    day = _Day(person, week, weekday, midnight, rng)
    if person.kind == "staff":
        _staff_day(day)
        return day.plan
    _student_day(day)
    day.plan.sort(key=lambda p: p[1])
    return day.plan


class _Day:
    """One person's day being planned; every choice draws from the week's random stream."""

    def __init__(
        self,
        person: Person,
        week: SimulatedWeek,
        weekday: int,
        midnight: float,
        rng: random.Random,
    ) -> None:
        self.person = person
        self.week = week
        self.weekday = weekday
        self.weekend = weekday >= 5
        self.midnight = midnight
        self.rng = rng
        self.plan: list[tuple[str, float, float]] = []

    def meal(self, index: int, probability: float) -> None:
        rng = self.rng
        if rng.random() < probability:
            lo, hi = MEALS[index]
            start = _hour(self.midnight, rng.uniform(lo, hi - 0.5))
            hall = self.person.canteen if rng.random() < 0.7 else rng.choice(self.week.canteens)
            self.plan.append((hall, start, start + rng.uniform(10, 35) * M))

    def lecture(self, slot: int) -> None:
        building = self.person.timetable.get((self.weekday, slot))
        if building is None:
            return
        lo, hi = CLASS_SLOTS[slot]
        arrive = _hour(self.midnight, lo) - self.rng.uniform(1, 12) * M
        self.plan.append((building, arrive, _hour(self.midnight, hi) + self.rng.uniform(0, 3) * M))

    def block(self, zone: str, lo: float, hi: float) -> None:
        self.plan.append(
            (
                zone,
                _hour(self.midnight, lo) + self.rng.uniform(0, 20) * M,
                _hour(self.midnight, hi) - self.rng.uniform(0, 15) * M,
            )
        )


def _staff_day(day: _Day) -> None:
    """Office hours around lunch, now and then the afternoon in a lab; most weekends off."""
    person, rng = day.person, day.rng
    if day.weekend and rng.random() < 0.8:
        return
    day.meal(0, 0.3)
    day.block(person.home, 8.5, 11.6)
    day.meal(1, 0.9)
    if person.lab and rng.random() < 0.5:
        day.block(person.lab, 13.5, 17.5)
    else:
        day.block(person.home, 13.5, 17.5)
    day.meal(2, 0.2)


def _student_day(day: _Day) -> None:
    """Meals, and on weekdays lectures by the timetable or a lab for those who have one."""
    person, rng, weekend = day.person, day.rng, day.weekend
    day.meal(0, 0.6 if not weekend else 0.3)
    if person.lab and not weekend:
        day.block(person.lab, 8.1, 11.6)
    elif not weekend:
        day.lecture(0)
        day.lecture(1)
    day.meal(1, 0.9)
    if not weekend:
        day.lecture(2)
        if person.lab and rng.random() < 0.7:
            day.block(person.lab, 16.1, 17.6)
        else:
            day.lecture(3)
    elif person.lab and rng.random() < 0.3:
        day.block(person.lab, 14.0, 17.5)
    day.meal(2, 0.8)
    if not weekend:
        day.lecture(4)


def _emit_day(
    person: Person,
    plan: list[tuple[str, float, float]],
    week: SimulatedWeek,
    rng: random.Random,
    last_out: dict[str, float],
    counters: dict[str, int],
    visits: list[Visit],
    records: list[AccessRecord],
    day: int,
) -> None:
    """Turn outings into visits, with the dormitory (or nothing, for staff) in between."""
    midnight = (week.start + timedelta(days=day)).timestamp()
    cleaned: list[tuple[str, float, float]] = []
    cursor = midnight
    for zone, start, end in plan:  # keep outings apart by a walk of 2-8 minutes
        start = max(start, cursor + rng.uniform(2, 8) * M)
        if end - start < 5 * M:
            continue
        cleaned.append((zone, start, end))
        cursor = end
    if person.kind == "student":
        # The night before in the dormitory, and back there for long gaps in the day.
        home_in = last_out.get(person.id)
        if not cleaned and day <= week.days:  # a lazy day: out for lunch only
            lunch = _hour(midnight, rng.uniform(11.7, 12.5))
            cleaned = [(person.canteen, lunch, lunch + rng.uniform(15, 35) * M)]
        if cleaned:
            wake = cleaned[0][1] - rng.uniform(3, 10) * M
        else:
            wake = _hour(midnight, rng.uniform(7.0, 10.0))
        if home_in is not None:
            _visit(
                person, week.zones[person.home], home_in, wake, week, rng, counters, visits, records
            )
        if day == week.days + 1:
            return
        for index, (zone, start, end) in enumerate(cleaned):
            _visit(person, week.zones[zone], start, end, week, rng, counters, visits, records)
            following = cleaned[index + 1][1] if index + 1 < len(cleaned) else None
            if following is not None and following - end > 90 * M and rng.random() < 0.5:
                _visit(
                    person,
                    week.zones[person.home],
                    end + rng.uniform(3, 10) * M,
                    following - rng.uniform(3, 10) * M,
                    week,
                    rng,
                    counters,
                    visits,
                    records,
                )
        last_out[person.id] = max(
            _hour(midnight, rng.uniform(21.0, 23.5)), cleaned[-1][2] + rng.uniform(3, 10) * M
        )
    else:
        for zone, start, end in cleaned:
            _visit(person, week.zones[zone], start, end, week, rng, counters, visits, records)
    if rng.random() < week.noise.denied_attempt and cleaned:
        _denied(person, week, rng, counters, records, cleaned)


def _visit(
    person: Person,
    zone: Zone,
    start: float,
    end: float,
    week: SimulatedWeek,
    rng: random.Random,
    counters: dict[str, int],
    visits: list[Visit],
    records: list[AccessRecord],
) -> None:
    if end - start < 2 * M:
        return
    visits.append(Visit(person.id, zone.id, start, end))
    records.append(_passage(person, zone, start, Direction.IN, counters))
    if zone.two_way and rng.random() >= week.noise.forgotten_out:
        records.append(_passage(person, zone, end, Direction.OUT, counters))


def _passage(
    person: Person,
    zone: Zone,
    ts: float,
    direction: Direction,
    counters: dict[str, int],
    verdict: Verdict = Verdict.ADMIT,
    reason: Reason = Reason.OK,
) -> AccessRecord:
    device = zone.entry_device if direction is Direction.IN else zone.exit_device
    counters[device] += 1
    when = datetime.fromtimestamp(ts, UTC)
    return AccessRecord(
        device_id=device,
        event_id=f"{device}-{counters[device]}",
        type=EventType.CARD,
        device_ts=when,
        received_at=when,
        door_id=device.removeprefix("term-"),
        zone_id=zone.id,
        person_id=person.id,
        card_uid=person.card,
        direction=direction,
        verdict=verdict,
        reason=reason,
        decided_at=when,
        latency_us=800,
    )


def _denied(
    person: Person,
    week: SimulatedWeek,
    rng: random.Random,
    counters: dict[str, int],
    records: list[AccessRecord],
    outings: list[tuple[str, float, float]],
) -> None:
    """A try at a lab the person may not enter, during a walk: denied, so never inside."""
    zone = week.zones[rng.choice(week.labs)]
    _, _, end = outings[0]
    records.append(
        _passage(
            person, zone, end + 60, Direction.IN, counters, Verdict.DENY, Reason.NOT_AUTHORIZED
        )
    )


def simulate(
    *,
    people: int = 5000,
    days: int = 7,
    seed: int = 2020,
    start: datetime | None = None,
    noise: NoiseRates | None = None,
) -> SimulatedWeek:
    """A campus of `people` (about 90 % students) over `days` traced days (plus day 0).

    `start` is day 0 (default: midnight campus time, `days + 2` days ago, so that the
    whole simulation lies in the past).
    """
    if people < 50 or days < 1:
        raise ValueError("need at least 50 people and 1 day")
    rng = random.Random(seed)
    if start is None:
        today = datetime.now(CAMPUS_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days + 2)
    n_staff = max(5, people // 10)
    n_students = people - n_staff
    zones: dict[str, Zone] = {}

    def add(zid: str, kind: str, two_way: bool = True) -> str:
        zones[zid] = Zone(zid, kind, two_way)
        return zid

    floors = [
        add(f"dorm-{i // 6 + 1}-f{i % 6 + 1}", "dormitory") for i in range(max(2, n_students // 40))
    ]
    labs = [add(f"lab-{i + 1}", "lab") for i in range(max(2, people // 80))]
    offices = [add(f"office-{i + 1}", "office") for i in range(max(2, n_staff // 10))]
    buildings = [
        add(f"teach-{i + 1}", "teaching", two_way=False) for i in range(max(2, people // 800))
    ]
    canteens = [add(f"canteen-{i + 1}", "other") for i in range(max(2, people // 400))]
    crowd: list[Person] = []
    for i in range(n_students):
        person = Person(
            id=f"S{i + 1:06d}",
            kind="student",
            card=f"{rng.getrandbits(32):08X}",
            home=floors[i % len(floors)],
            lab=rng.choice(labs) if rng.random() < 0.3 else None,
            canteen=rng.choice(canteens),
            name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
        )
        for weekday in range(5):
            for slot in range(len(CLASS_SLOTS)):
                if rng.random() < (0.45 if slot < 4 else 0.15):
                    person.timetable[(weekday, slot)] = rng.choice(buildings)
        crowd.append(person)
    for i in range(n_staff):
        crowd.append(
            Person(
                id=f"T{i + 1:05d}",
                kind="staff",
                card=f"{rng.getrandbits(32):08X}",
                home=offices[i % len(offices)],
                lab=rng.choice(labs) if rng.random() < 0.3 else None,
                canteen=rng.choice(canteens),
                name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
            )
        )
    return SimulatedWeek(
        zones, crowd, start.astimezone(CAMPUS_TZ), days, seed, noise or NoiseRates()
    )


class TruthIndex:
    """True contacts from visits: total overlap in one zone of at least `min_overlap_s`."""

    def __init__(self, visits: Iterable[Visit], start: datetime, end: datetime) -> None:
        lo, hi = start.timestamp(), end.timestamp()
        self._by_zone: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        self._by_person: dict[str, list[Visit]] = defaultdict(list)
        for v in visits:
            s, e = max(v.start, lo), min(v.end, hi)
            if e > s:
                clipped = Visit(v.person_id, v.zone_id, s, e)
                self._by_zone[v.zone_id].append((s, e, v.person_id))
                self._by_person[v.person_id].append(clipped)
        self._starts: dict[str, list[float]] = {}
        self._longest: dict[str, float] = {}
        for zone, spans in self._by_zone.items():
            spans.sort()
            self._starts[zone] = [s for s, _, _ in spans]
            self._longest[zone] = max(e - s for s, e, _ in spans)

    def people(self) -> list[str]:
        return sorted(self._by_person)

    def contacts(self, person_id: str, min_overlap_s: float = MIN_OVERLAP_S) -> dict[str, float]:
        """Everyone who overlapped `person_id` at least `min_overlap_s`: overlap seconds."""
        total: dict[str, float] = defaultdict(float)
        for v in self._by_person.get(person_id, ()):
            spans, starts = self._by_zone[v.zone_id], self._starts[v.zone_id]
            first = bisect.bisect_left(starts, v.start - self._longest[v.zone_id])
            last = bisect.bisect_left(starts, v.end)
            for s, e, other in spans[first:last]:
                if other != person_id and e > v.start:
                    total[other] += min(e, v.end) - max(s, v.start)
        return {p: secs for p, secs in total.items() if secs >= min_overlap_s}


def score(
    traced: Sequence[tuple[str, set[str]]], truth: TruthIndex
) -> tuple[float, float, int, int]:
    """(recall, precision, true pairs, traced pairs) over all (index, contact) pairs."""
    true_pairs = traced_pairs = hits = 0
    for index, found in traced:
        real = set(truth.contacts(index))
        true_pairs += len(real)
        traced_pairs += len(found)
        hits += len(real & found)
    recall = hits / true_pairs if true_pairs else 1.0
    precision = hits / traced_pairs if traced_pairs else 1.0
    return recall, precision, true_pairs, traced_pairs
