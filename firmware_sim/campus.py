"""A generated sample campus: a manifest (CONTRACT.md section 6) and its ground truth.

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
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

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


def _contact_numbers(person_id: str) -> dict[str, str]:
    """A made-up mobile number and ID number, fixed by the person id (not the generator's
    random stream, so adding them changed no other part of a seeded campus)."""
    digits = "".join(str(b % 10) for b in hashlib.sha256(person_id.encode()).digest())
    birth = (
        f"{1998 + int(digits[0]) % 8}{1 + int(digits[1:3]) % 12:02d}{1 + int(digits[3:5]) % 28:02d}"
    )
    return {"phone": f"13{digits[5:14]}", "id_number": f"110108{birth}{digits[14:17]}{digits[17]}"}


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

    def devices_at(self, door: str) -> tuple[str, ...]:
        return tuple(d for d, dd in self.device_doors.items() if dd == door)

    def terminal_at(self, door: str) -> str:
        return f"term-{door}"


@dataclass(frozen=True, slots=True)
class Campus:
    manifest: dict[str, list[dict[str, Any]]]
    facts: CampusFacts


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
    fever_reserve = 5
    if n_students < dormitories * 8 + colleges * 2 + isolated + n_inactive + fever_reserve:
        raise ValueError(f"{people} people are too few for this campus; try at least 200")
    today = today or date.today()
    rng = random.Random(seed)
    names = _Names(rng)
    cards = _Cards(rng)

    m: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("org_units", "zones", "doors", "devices", "people", "grants", "health")
    }
    device_doors: dict[str, str] = {}
    door_zones: dict[str, str] = {}
    door_directions: dict[str, str] = {}
    temperature_doors: set[str] = set()
    zone_kinds: dict[str, str] = {}

    # ---- org units -------------------------------------------------------------
    m["org_units"].append({"id": UNIVERSITY[0], "name": UNIVERSITY[1]})
    for oid, name in OFFICES:
        m["org_units"].append({"id": oid, "name": name, "parent": UNIVERSITY[0]})
    classes: list[tuple[str, str]] = []  # (class id, college id)
    departments: list[str] = []
    chosen = COLLEGES[:colleges]
    years = (today.year - 3, today.year - 2, today.year - 1, today.year)
    for cid, cname, depts in chosen:
        m["org_units"].append({"id": cid, "name": cname, "parent": UNIVERSITY[0]})
        for d, dname in enumerate(depts, start=1):
            did = f"{cid}-d{d}"
            departments.append(did)
            m["org_units"].append({"id": did, "name": f"Department of {dname}", "parent": cid})
            for year in years:
                kid = f"{did}-{year}"
                classes.append((kid, cid))
                m["org_units"].append({"id": kid, "name": f"{dname} Class {year}", "parent": did})

    # ---- zones and doors -------------------------------------------------------
    def zone(zid: str, name: str, kind: str, capacity: int | None) -> None:
        row: dict[str, Any] = {"id": zid, "name": name, "kind": kind}
        if capacity is not None:
            row["capacity"] = capacity
        m["zones"].append(row)
        zone_kinds[zid] = kind

    def door(did: str, zid: str, direction: str, *, temperature: bool = False) -> None:
        row: dict[str, Any] = {"id": did, "zone": zid, "direction": direction}
        if temperature:
            row["requires_temperature"] = True
            temperature_doors.add(did)
        m["doors"].append(row)
        door_zones[did] = zid
        door_directions[did] = direction
        m["devices"].append(
            {"id": f"term-{did}", "door": did, "kind": "terminal", "transport": "mqtt"}
        )
        device_doors[f"term-{did}"] = did
        if temperature and separate_scanners:
            m["devices"].append(
                {
                    "id": f"scan-{did}",
                    "door": did,
                    "kind": "temperature_scanner",
                    "transport": "mqtt",
                }
            )
            device_doors[f"scan-{did}"] = did

    zone("gate", "Main Gate", "gate", None)
    door("gate-main-in", "gate", "in")
    door("gate-main-out", "gate", "out")
    dorm_sizes = _split(n_students, dormitories)
    dorms = [f"dorm-{i}" for i in range(1, dormitories + 1)]
    for dorm_id, size in zip(dorms, dorm_sizes, strict=True):
        # Room to spare: a full dormitory must be a decision someone provokes, not an accident.
        capacity = (size * 5 // 4 // 50 + 1) * 50
        zone(dorm_id, f"Dormitory {dorm_id.split('-')[1]}", "dormitory", capacity)
        door(f"{dorm_id}-main", dorm_id, "in", temperature=True)
        door(f"{dorm_id}-exit", dorm_id, "out")
    labs_of: dict[str, list[str]] = {}
    for cid, cname, _ in chosen:
        for n in range(1, labs_per_college + 1):
            lab_id = f"lab-{cid}-{n}"
            labs_of.setdefault(cid, []).append(lab_id)
            lab_name = f"{cname.removeprefix('School of ')} {LAB_NAMES[(n - 1) % len(LAB_NAMES)]}"
            zone(lab_id, lab_name, "lab", rng.choice((20, 30, 40, 60)))
            door(f"{lab_id}-door", lab_id, "both")
    offices = [f"office-{oid}" for oid, _ in OFFICES]
    for (_, oname), zid in zip(OFFICES, offices, strict=True):
        zone(zid, oname, "office", 30)
        door(f"{zid}-door", zid, "both")
    teaching = [f"teach-{chr(ord('a') + i)}" for i in range(teaching_buildings)]
    for zid in teaching:
        zone(zid, f"Teaching Building {zid[-1].upper()}", "teaching", 1500)
        door(f"{zid}-main", zid, "both")

    # ---- people and cards --------------------------------------------------------
    sim_people: list[SimPerson] = []

    def person(
        pid: str, kind: str, org_unit: str, *, college: str | None = None, dorm: str | None = None
    ) -> SimPerson:
        held = [cards.new()]
        if rng.random() < 0.05:  # a replacement card beside the old one
            held.append(cards.new())
        sp = SimPerson(pid, kind, org_unit, tuple(held), college, dorm)
        sim_people.append(sp)
        return sp

    # Students: classes fill dormitories in order, so a class mostly shares a dormitory.
    per_class = _split(n_students, len(classes))
    dorm_slots = [d for d, size in zip(dorms, dorm_sizes, strict=True) for _ in range(size)]
    seq_by_college: dict[str, int] = {}
    slot = 0
    for (kid, cid), count in zip(classes, per_class, strict=True):
        year = kid.rsplit("-", 1)[1]
        college_no = [c[0] for c in chosen].index(cid) + 1
        for _ in range(count):
            seq_by_college[cid] = seq_by_college.get(cid, 0) + 1
            pid = f"{year}{college_no:02d}{seq_by_college[cid]:04d}"
            person(pid, "student", kid, college=cid, dorm=dorm_slots[slot])
            slot += 1
    staff_units = [oid for oid, _ in OFFICES] + departments
    for n in range(1, n_staff + 1):
        unit = staff_units[(n - 1) % len(staff_units)]
        college = unit.split("-d")[0] if unit in departments else None
        person(f"T{n:04d}", "staff", unit, college=college)
    for n in range(1, n_visitors + 1):
        person(f"V{n:04d}", "visitor", rng.choice([c[0] for c in chosen]))

    # ---- the special people the scenarios rely on ----------------------------------
    dorm = dorms[0]
    students = [p for p in sim_people if p.kind == "student"]
    residents = [p for p in students if p.dorm == dorm]
    rng.shuffle(residents)
    isolated_people = residents[:isolated]
    inactive_people = [residents[isolated]]
    fever_people = residents[isolated + 1 : isolated + 1 + fever_reserve]
    taken = {p.id for p in isolated_people + inactive_people + fever_people}
    others = [p for p in sim_people if p.id not in taken]
    rng.shuffle(others)
    for p in others:
        if len(inactive_people) >= n_inactive:
            break
        inactive_people.append(p)
    taken |= {p.id for p in inactive_people}
    staff_people = [p for p in sim_people if p.kind == "staff" and p.id not in taken]
    caretakers = staff_people[: max(1, isolated)]
    taken |= {p.id for p in caretakers}

    replace: dict[str, SimPerson] = {}
    for p in isolated_people:
        replace[p.id] = dataclasses.replace(p, isolated=True)
    for p in inactive_people:
        replace[p.id] = dataclasses.replace(p, active=False)
    sim_people = [replace.get(p.id, p) for p in sim_people]

    for p in sim_people:
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
        m["people"].append(row)

    # ---- grants ------------------------------------------------------------------
    for p in sim_people:
        if p.dorm is not None:
            m["grants"].append({"subject": {"person": p.id}, "zone": p.dorm})
    for cid, labs in labs_of.items():
        for lab_id in labs:
            m["grants"].append(
                {"subject": {"org_unit": cid}, "zone": lab_id, "schedule": LAB_SCHEDULE}
            )
    for zid in offices + teaching:
        m["grants"].append({"subject": {"kind": "staff"}, "zone": zid})
    for zid in teaching:
        m["grants"].append(
            {"subject": {"kind": "student"}, "zone": zid, "schedule": TEACHING_SCHEDULE}
        )
    for kind in ("student", "staff"):
        m["grants"].append({"subject": {"kind": kind}, "zone": "gate"})
    m["grants"].append(
        {
            "subject": {"kind": "visitor"},
            "zone": "gate",
            "valid_until": (today + timedelta(days=30)).isoformat(),
        }
    )

    # ---- health --------------------------------------------------------------------
    for p, carer in zip(isolated_people, caretakers * isolated, strict=False):
        m["health"].append(
            {
                "person": p.id,
                "status": "home_isolation",
                "until": (today + timedelta(days=rng.randint(5, 14))).isoformat(),
                "reason": ISOLATION_REASON,
                "caretaker": carer.id,
            }
        )

    # ---- facts -----------------------------------------------------------------------
    healthy = [p for p in sim_people if p.active and not p.isolated and p.id not in taken]
    healthy_residents = [p for p in healthy if p.dorm == dorm]
    lab_college = chosen[0][0]
    lab = labs_of[lab_college][0]
    stranger = next(p for p in healthy if p.kind == "student" and p.college != lab_college)
    member = next(p for p in healthy if p.kind == "student" and p.college == lab_college)
    staff_person = next(p for p in healthy if p.kind == "staff")
    visitor = next(p for p in healthy if p.kind == "visitor")
    temperature_door = f"{dorm}-main"
    facts = CampusFacts(
        seed=seed,
        temperature_door=temperature_door,
        temperature_device=f"term-{temperature_door}",
        dorm=dorm,
        dorm_exit_door=f"{dorm}-exit",
        dorm_exit_device=f"term-{dorm}-exit",
        resident_cards=tuple(p.cards[0] for p in healthy_residents),
        fever_cards=tuple(p.cards[0] for p in fever_people),
        outsider_card=cards.unused(),
        isolated_person=isolated_people[0].id if isolated_people else "",
        isolated_card=isolated_people[0].cards[0] if isolated_people else "",
        caretaker=caretakers[0].id,
        inactive_person=inactive_people[0].id,
        inactive_card=inactive_people[0].cards[0],
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
        office_door=f"{offices[0]}-door",
        office_device=f"term-{offices[0]}-door",
        staff_card=staff_person.cards[0],
        visitor_card=visitor.cards[0],
        scanner_device=f"scan-{temperature_door}" if separate_scanners else None,
        device_doors=device_doors,
        door_zones=door_zones,
        door_directions=door_directions,
        temperature_doors=frozenset(temperature_doors),
        zone_kinds=zone_kinds,
        people=tuple(sim_people),
    )
    return Campus(manifest=m, facts=facts)


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
