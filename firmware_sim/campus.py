"""A generated sample campus: a manifest (docs/manifest.md) and its ground truth.

`generate_campus(seed=..., people=...)` is deterministic for a seed, a size and
`today` (the only date it depends on: isolation ends and visitor passes are
counted from it). The `CampusFacts` it returns say, by construction and not by
asking the gateway, which card should be admitted where, so the scenarios can
state what they expect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from firmware_sim.campus_facts import Campus, CampusFacts, SimPerson

__all__ = [
    "Campus",
    "CampusFacts",
    "SimPerson",
    "dump_manifest",
    "generate_campus",
    "write_manifest",
]

UNIVERSITY = ("univ", "Northfield University")
OFFICES = (
    ("student-affairs", "Student Affairs Office"),
    ("school-office", "School Office"),
    ("security", "Campus Security Office"),
)
COLLEGES = (
    ("cs", "School of Computer Science", ("Software Engineering", "Artificial Intelligence")),
    ("ee", "School of Electrical Engineering", ("Power Systems", "Microelectronics")),
    ("med", "School of Medicine", ("Clinical Medicine", "Public Health")),
    ("math", "School of Mathematics", ("Pure Mathematics", "Statistics")),
    ("chem", "School of Chemistry", ("Organic Chemistry", "Materials")),
    ("bio", "School of Life Sciences", ("Genetics", "Ecology")),
    ("law", "School of Law", ("Civil Law", "International Law")),
    ("econ", "School of Economics", ("Finance", "Trade")),
)
LAB_NAMES = ("Teaching Lab", "Research Lab", "Innovation Lab")
SURNAMES = (
    "Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
    "Xu", "Sun", "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo",
)  # fmt: skip
GIVEN = (
    "Hua", "Wei", "Fang", "Min", "Jing", "Lei", "Qiang", "Yan", "Jun", "Jie",
    "Tao", "Ming", "Chao", "Xia", "Ping", "Hui", "Yu", "Lan", "Bo", "Ning",
    "Xin", "Hao", "Yi", "Ting", "Kai", "Rui", "Shan", "Feng", "Li", "Dan",
)  # fmt: skip
LAB_SCHEDULE = "Mon-Fri 07:00-23:00"
TEACHING_SCHEDULE = "daily 06:00-23:00"
ISOLATION_REASON = "returned from an epidemic area"
FEVER = 38.5
NORMAL = 36.5


def _contact_numbers(person_id: str) -> dict[str, str]:
    """A made-up mobile number and ID number, fixed by the person id (not the generator's
    random stream, so adding them changed no other part of a seeded campus)."""
    digits = "".join(str(b % 10) for b in hashlib.sha256(person_id.encode()).digest())
    birth = (
        f"{1998 + int(digits[0]) % 8}{1 + int(digits[1:3]) % 12:02d}{1 + int(digits[3:5]) % 28:02d}"
    )
    return {"phone": f"13{digits[5:14]}", "id_number": f"110108{birth}{digits[14:17]}{digits[17]}"}


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self) -> str:
        given = self._rng.choice(GIVEN)
        if self._rng.random() < 0.4:
            given += self._rng.choice(GIVEN).lower()
        return f"{self._rng.choice(SURNAMES)} {given}"


class _Cards:
    """Unique 4- or 7-byte card UIDs (7-byte ones start with 04, as NXP's do)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.issued: set[str] = set()

    def new(self) -> str:
        while True:
            if self._rng.random() < 0.6:
                uid = f"{self._rng.getrandbits(32):08X}"
            else:
                uid = f"04{self._rng.getrandbits(48):012X}"
            if uid not in self.issued:
                self.issued.add(uid)
                return uid

    def unused(self) -> str:
        """A valid UID that no one holds (and that is not handed out later)."""
        return self.new()


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass(frozen=True, slots=True)
class _Shape:
    """What `generate_campus` was asked for, with the head counts its defaults give."""

    chosen: tuple[tuple[str, str, tuple[str, ...]], ...]  # the colleges used
    dormitories: int
    teaching_buildings: int
    labs_per_college: int
    students: int
    staff: int
    visitors: int
    inactive: int
    isolated: int
    separate_scanners: bool
    today: date

    @property
    def dorms(self) -> list[str]:
        return [f"dorm-{i}" for i in range(1, self.dormitories + 1)]

    @property
    def dorm_sizes(self) -> list[int]:
        return _split(self.students, self.dormitories)


FEVER_RESERVE = 5  # healthy residents kept aside, one per fever a scenario plays


def _shape(
    *,
    people: int,
    colleges: int,
    dormitories: int,
    teaching_buildings: int,
    labs_per_college: int,
    visitors: int | None,
    staff: int | None,
    inactive: int | None,
    isolated: int,
    separate_scanners: bool,
    today: date,
) -> _Shape:
    if not 1 <= colleges <= len(COLLEGES):
        raise ValueError(f"colleges must be 1-{len(COLLEGES)}")
    if colleges < 2:
        raise ValueError("at least 2 colleges, so some student has no grant for a lab")
    if dormitories < 1 or teaching_buildings < 1 or labs_per_college < 1:
        raise ValueError("need at least one dormitory, teaching building and lab per college")
    n_visitors = visitors if visitors is not None else max(3, people // 100)
    n_staff = staff if staff is not None else max(3 + isolated, people // 10)
    n_inactive = inactive if inactive is not None else max(3, people // 200)
    n_students = people - n_visitors - n_staff
    if n_students < dormitories * 8 + colleges * 2 + isolated + n_inactive + FEVER_RESERVE:
        raise ValueError(f"{people} people are too few for this campus; try at least 200")
    return _Shape(
        chosen=COLLEGES[:colleges],
        dormitories=dormitories,
        teaching_buildings=teaching_buildings,
        labs_per_college=labs_per_college,
        students=n_students,
        staff=n_staff,
        visitors=n_visitors,
        inactive=n_inactive,
        isolated=isolated,
        separate_scanners=separate_scanners,
        today=today,
    )


@dataclass(slots=True)
class _Manifest:
    """The manifest being written, and the facts the scenarios need about its doors."""

    shape: _Shape
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            k: [] for k in ("org_units", "zones", "doors", "devices", "people", "grants", "health")
        }
    )
    device_doors: dict[str, str] = field(default_factory=dict)
    door_zones: dict[str, str] = field(default_factory=dict)
    door_directions: dict[str, str] = field(default_factory=dict)
    temperature_doors: set[str] = field(default_factory=set)
    zone_kinds: dict[str, str] = field(default_factory=dict)

    def zone(self, plan: _ZonePlan) -> None:
        row: dict[str, Any] = {"id": plan.id, "name": plan.name, "kind": plan.kind}
        if plan.capacity is not None:
            row["capacity"] = plan.capacity
        self.rows["zones"].append(row)
        self.zone_kinds[plan.id] = plan.kind
        for door_id, direction, temperature in plan.doors:
            self.door(door_id, plan.id, direction, temperature=temperature)

    def door(self, did: str, zid: str, direction: str, *, temperature: bool) -> None:
        row: dict[str, Any] = {"id": did, "zone": zid, "direction": direction}
        if temperature:
            row["requires_temperature"] = True
            self.temperature_doors.add(did)
        self.rows["doors"].append(row)
        self.door_zones[did] = zid
        self.door_directions[did] = direction
        self.device(f"term-{did}", did, "terminal")
        if temperature and self.shape.separate_scanners:
            self.device(f"scan-{did}", did, "temperature_scanner")

    def device(self, device_id: str, door: str, kind: str) -> None:
        self.rows["devices"].append(
            {"id": device_id, "door": door, "kind": kind, "transport": "mqtt"}
        )
        self.device_doors[device_id] = door


# ---- org units ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Orgs:
    classes: list[tuple[str, str]]  # (class id, college id)
    departments: list[str]


def _org_units(m: _Manifest) -> _Orgs:
    """The university, its offices, and for each college its departments and year classes."""
    rows = m.rows["org_units"]
    rows.append({"id": UNIVERSITY[0], "name": UNIVERSITY[1]})
    for oid, name in OFFICES:
        rows.append({"id": oid, "name": name, "parent": UNIVERSITY[0]})
    orgs = _Orgs(classes=[], departments=[])
    year = m.shape.today.year
    for cid, cname, depts in m.shape.chosen:
        rows.append({"id": cid, "name": cname, "parent": UNIVERSITY[0]})
        for d, dname in enumerate(depts, start=1):
            did = f"{cid}-d{d}"
            orgs.departments.append(did)
            rows.append({"id": did, "name": f"Department of {dname}", "parent": cid})
            for class_year in (year - 3, year - 2, year - 1, year):
                kid = f"{did}-{class_year}"
                orgs.classes.append((kid, cid))
                rows.append({"id": kid, "name": f"{dname} Class {class_year}", "parent": did})
    return orgs


# ---- zones and doors, by zone kind ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ZonePlan:
    id: str
    name: str
    kind: str
    capacity: int | None
    doors: tuple[tuple[str, str, bool], ...]  # (door id, direction, requires temperature)


def _gates(shape: _Shape, rng: random.Random) -> list[_ZonePlan]:
    doors = (("gate-main-in", "in", False), ("gate-main-out", "out", False))
    return [_ZonePlan("gate", "Main Gate", "gate", None, doors)]


def _dormitories(shape: _Shape, rng: random.Random) -> list[_ZonePlan]:
    return [
        _ZonePlan(
            dorm_id,
            f"Dormitory {dorm_id.split('-')[1]}",
            "dormitory",
            # Room to spare: a full dormitory must be a decision someone provokes, not an accident.
            (size * 5 // 4 // 50 + 1) * 50,
            ((f"{dorm_id}-main", "in", True), (f"{dorm_id}-exit", "out", False)),
        )
        for dorm_id, size in zip(shape.dorms, shape.dorm_sizes, strict=True)
    ]


def _labs(shape: _Shape, rng: random.Random) -> list[_ZonePlan]:
    plans = []
    for cid, cname, _ in shape.chosen:
        for n in range(1, shape.labs_per_college + 1):
            lab_id = f"lab-{cid}-{n}"
            lab_name = f"{cname.removeprefix('School of ')} {LAB_NAMES[(n - 1) % len(LAB_NAMES)]}"
            capacity = rng.choice((20, 30, 40, 60))
            plans.append(_ZonePlan(lab_id, lab_name, "lab", capacity, _one_door(lab_id, "door")))
    return plans


def _offices(shape: _Shape, rng: random.Random) -> list[_ZonePlan]:
    return [
        _ZonePlan(f"office-{oid}", oname, "office", 30, _one_door(f"office-{oid}", "door"))
        for oid, oname in OFFICES
    ]


def _teaching(shape: _Shape, rng: random.Random) -> list[_ZonePlan]:
    zones = [f"teach-{chr(ord('a') + i)}" for i in range(shape.teaching_buildings)]
    return [
        _ZonePlan(zid, f"Teaching Building {zid[-1].upper()}", "teaching", 1500, _one_door(zid))
        for zid in zones
    ]


def _one_door(zone_id: str, name: str = "main") -> tuple[tuple[str, str, bool], ...]:
    return ((f"{zone_id}-{name}", "both", False),)


# In manifest order; a lab's capacity is drawn from the generator's random stream, so
# this order is part of what a seed means.
ZONE_KINDS: tuple[Callable[[_Shape, random.Random], list[_ZonePlan]], ...] = (
    _gates,
    _dormitories,
    _labs,
    _offices,
    _teaching,
)


# ---- people and cards ----------------------------------------------------------------


def _everyone(shape: _Shape, orgs: _Orgs, rng: random.Random, cards: _Cards) -> list[SimPerson]:
    """Students (classes fill dormitories in order, so a class mostly shares a dormitory),
    then staff across offices and departments, then visitors."""
    people: list[SimPerson] = []

    def person(
        pid: str, kind: str, org_unit: str, *, college: str | None = None, dorm: str | None = None
    ) -> None:
        held = [cards.new()]
        if rng.random() < 0.05:  # a replacement card beside the old one
            held.append(cards.new())
        people.append(SimPerson(pid, kind, org_unit, tuple(held), college, dorm))

    per_class = _split(shape.students, len(orgs.classes))
    dorm_slots = [
        d for d, size in zip(shape.dorms, shape.dorm_sizes, strict=True) for _ in range(size)
    ]
    college_ids = [c[0] for c in shape.chosen]
    seq_by_college: dict[str, int] = {}
    slot = 0
    for (kid, cid), count in zip(orgs.classes, per_class, strict=True):
        year = kid.rsplit("-", 1)[1]
        college_no = college_ids.index(cid) + 1
        for _ in range(count):
            seq_by_college[cid] = seq_by_college.get(cid, 0) + 1
            pid = f"{year}{college_no:02d}{seq_by_college[cid]:04d}"
            person(pid, "student", kid, college=cid, dorm=dorm_slots[slot])
            slot += 1
    staff_units = [oid for oid, _ in OFFICES] + orgs.departments
    for n in range(1, shape.staff + 1):
        unit = staff_units[(n - 1) % len(staff_units)]
        college = unit.split("-d")[0] if unit in orgs.departments else None
        person(f"T{n:04d}", "staff", unit, college=college)
    for n in range(1, shape.visitors + 1):
        person(f"V{n:04d}", "visitor", rng.choice(college_ids))
    return people


@dataclass(frozen=True, slots=True)
class _Cast:
    """The people the scenarios rely on, set apart from everyday traffic."""

    isolated: list[SimPerson]
    inactive: list[SimPerson]
    fever: list[SimPerson]
    caretakers: list[SimPerson]

    @property
    def taken(self) -> set[str]:
        return {p.id for p in self.isolated + self.inactive + self.fever + self.caretakers}


def _cast(shape: _Shape, people: list[SimPerson], rng: random.Random) -> _Cast:
    """Isolated, inactive and fever-reserved residents of the first dormitory, more inactive
    people from anywhere, and staff caretakers."""
    residents = [p for p in people if p.kind == "student" and p.dorm == shape.dorms[0]]
    rng.shuffle(residents)
    isolated = residents[: shape.isolated]
    inactive = [residents[shape.isolated]]
    fever = residents[shape.isolated + 1 : shape.isolated + 1 + FEVER_RESERVE]
    taken = {p.id for p in isolated + inactive + fever}
    others = [p for p in people if p.id not in taken]
    rng.shuffle(others)
    for p in others:
        if len(inactive) >= shape.inactive:
            break
        inactive.append(p)
    taken |= {p.id for p in inactive}
    staff_people = [p for p in people if p.kind == "staff" and p.id not in taken]
    caretakers = staff_people[: max(1, shape.isolated)]
    return _Cast(isolated, inactive, fever, caretakers)


def _with_status(people: list[SimPerson], cast: _Cast) -> list[SimPerson]:
    replace: dict[str, SimPerson] = {}
    for p in cast.isolated:
        replace[p.id] = dataclasses.replace(p, isolated=True)
    for p in cast.inactive:
        replace[p.id] = dataclasses.replace(p, active=False)
    return [replace.get(p.id, p) for p in people]


def _person_rows(m: _Manifest, people: list[SimPerson], names: _Names) -> None:
    for p in people:
        row: dict[str, Any] = {
            "id": p.id,
            "kind": p.kind,
            "name": names(),
            "org_unit": p.org_unit,
            "cards": list(p.cards),
            **_contact_numbers(p.id),
        }
        if not p.active:
            row["active"] = False
        m.rows["people"].append(row)


# ---- grants and health ---------------------------------------------------------------


def _zones_of(m: _Manifest, *kinds: str) -> list[str]:
    return [z for z, k in m.zone_kinds.items() if k in kinds]


def _grant_rows(m: _Manifest, people: list[SimPerson]) -> None:
    """Residents their dormitory, a college its labs (on schedule), staff offices and
    teaching buildings, students teaching buildings (on schedule), everyone the gate
    (visitors for 30 days)."""
    grants = m.rows["grants"]
    grants.extend({"subject": {"person": p.id}, "zone": p.dorm} for p in people if p.dorm)
    for lab_id in _zones_of(m, "lab"):
        college = lab_id.split("-")[1]
        grants.append({"subject": {"org_unit": college}, "zone": lab_id, "schedule": LAB_SCHEDULE})
    teaching = _zones_of(m, "teaching")
    for zid in _zones_of(m, "office") + teaching:
        grants.append({"subject": {"kind": "staff"}, "zone": zid})
    for zid in teaching:
        grants.append({"subject": {"kind": "student"}, "zone": zid, "schedule": TEACHING_SCHEDULE})
    for kind in ("student", "staff"):
        grants.append({"subject": {"kind": kind}, "zone": "gate"})
    until = (m.shape.today + timedelta(days=30)).isoformat()
    grants.append({"subject": {"kind": "visitor"}, "zone": "gate", "valid_until": until})


def _health_rows(m: _Manifest, cast: _Cast, rng: random.Random) -> None:
    for p, carer in zip(cast.isolated, cast.caretakers * len(cast.isolated), strict=False):
        m.rows["health"].append(
            {
                "person": p.id,
                "status": "home_isolation",
                "until": (m.shape.today + timedelta(days=rng.randint(5, 14))).isoformat(),
                "reason": ISOLATION_REASON,
                "caretaker": carer.id,
            }
        )


# ---- the ground truth ----------------------------------------------------------------


def _facts(
    seed: int, m: _Manifest, people: list[SimPerson], cast: _Cast, cards: _Cards
) -> CampusFacts:
    dorm = m.shape.dorms[0]
    taken = cast.taken
    healthy = [p for p in people if p.active and not p.isolated and p.id not in taken]
    lab_college = m.shape.chosen[0][0]
    lab = f"lab-{lab_college}-1"
    office = _zones_of(m, "office")[0]
    stranger = next(p for p in healthy if p.kind == "student" and p.college != lab_college)
    member = next(p for p in healthy if p.kind == "student" and p.college == lab_college)
    staff_person = next(p for p in healthy if p.kind == "staff")
    visitor = next(p for p in healthy if p.kind == "visitor")
    temperature_door = f"{dorm}-main"
    return CampusFacts(
        seed=seed,
        temperature_door=temperature_door,
        temperature_device=f"term-{temperature_door}",
        dorm=dorm,
        dorm_exit_door=f"{dorm}-exit",
        dorm_exit_device=f"term-{dorm}-exit",
        resident_cards=tuple(p.cards[0] for p in healthy if p.dorm == dorm),
        fever_cards=tuple(p.cards[0] for p in cast.fever),
        outsider_card=cards.unused(),
        isolated_person=cast.isolated[0].id if cast.isolated else "",
        isolated_card=cast.isolated[0].cards[0] if cast.isolated else "",
        caretaker=cast.caretakers[0].id,
        inactive_person=cast.inactive[0].id,
        inactive_card=cast.inactive[0].cards[0],
        gate_door="gate-main-in",
        gate_device="term-gate-main-in",
        gate_exit_door="gate-main-out",
        gate_exit_device="term-gate-main-out",
        lab=lab,
        lab_door=f"{lab}-door",
        lab_device=f"term-{lab}-door",
        lab_college=lab_college,
        lab_member_card=member.cards[0],
        lab_stranger_card=stranger.cards[0],
        office_door=f"{office}-door",
        office_device=f"term-{office}-door",
        staff_card=staff_person.cards[0],
        visitor_card=visitor.cards[0],
        scanner_device=f"scan-{temperature_door}" if m.shape.separate_scanners else None,
        device_doors=m.device_doors,
        door_zones=m.door_zones,
        door_directions=m.door_directions,
        temperature_doors=frozenset(m.temperature_doors),
        zone_kinds=m.zone_kinds,
        people=tuple(people),
    )


def generate_campus(
    *,
    seed: int = 2020,
    people: int = 3000,
    colleges: int = 4,
    dormitories: int = 4,
    teaching_buildings: int = 2,
    labs_per_college: int = 2,
    visitors: int | None = None,
    staff: int | None = None,
    inactive: int | None = None,
    isolated: int = 3,
    separate_scanners: bool = False,
    today: date | None = None,
) -> Campus:
    """Generate a sample campus of `people` people (students, staff, visitors).

    Defaults: about 10 % staff, 1 % visitors (at least 3 each), 0.5 % inactive (at
    least 3), `isolated` people in home isolation. `separate_scanners` adds a
    `temperature_scanner` device (`scan-<door>`) at every temperature door.
    """
    shape = _shape(
        people=people,
        colleges=colleges,
        dormitories=dormitories,
        teaching_buildings=teaching_buildings,
        labs_per_college=labs_per_college,
        visitors=visitors,
        staff=staff,
        inactive=inactive,
        isolated=isolated,
        separate_scanners=separate_scanners,
        today=today or date.today(),
    )
    # One random stream for everything, drawn in this order: the order is what a seed means.
    rng = random.Random(seed)
    names = _Names(rng)
    cards = _Cards(rng)
    m = _Manifest(shape)
    orgs = _org_units(m)
    for zones_of_kind in ZONE_KINDS:
        for plan in zones_of_kind(shape, rng):
            m.zone(plan)
    everyone = _everyone(shape, orgs, rng, cards)
    cast = _cast(shape, everyone, rng)
    everyone = _with_status(everyone, cast)
    _person_rows(m, everyone, names)
    _grant_rows(m, everyone)
    _health_rows(m, cast, rng)
    return Campus(manifest=m.rows, facts=_facts(seed, m, everyone, cast, cards))


def write_manifest(path: str | Path, **options: Any) -> CampusFacts:
    """Generate a campus (options as for `generate_campus`) and write its manifest.

    YAML unless the file name ends in `.json`. Returns the campus facts.
    """
    campus = generate_campus(**options)
    dump_manifest(campus.manifest, path)
    return campus.facts


_LOOKS_NUMERIC = re.compile(r"^[0-9A-Fa-f:.+-]+$")


class _ManifestDumper(yaml.SafeDumper):
    """Quotes ids, card UIDs and dates, which a YAML 1.2 reader might take for numbers."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if _LOOKS_NUMERIC.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def dump_manifest(manifest: dict[str, Any], path: str | Path) -> None:
    target = Path(path)
    if target.suffix.lower() == ".json":
        text = json.dumps(manifest, indent=1, ensure_ascii=False)
    else:
        text = yaml.dump(
            manifest, Dumper=_ManifestDumper, sort_keys=False, allow_unicode=True, width=120
        )
    target.write_text(text, encoding="utf-8")
