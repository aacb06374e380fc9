"""The sample-campus generator: deterministic, consistent, and as big as asked."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from firmware_sim.campus import Campus, generate_campus, write_manifest

TODAY = date(2026, 11, 28)


@pytest.fixture(scope="module")
def campus() -> Campus:
    return generate_campus(seed=7, people=3000, today=TODAY)


def test_same_seed_same_campus_other_seed_other_cards() -> None:
    a = generate_campus(seed=11, people=500, today=TODAY)
    b = generate_campus(seed=11, people=500, today=TODAY)
    c = generate_campus(seed=12, people=500, today=TODAY)
    assert a.manifest == b.manifest and a.facts == b.facts
    cards_a = {u for p in a.manifest["people"] for u in p["cards"]}
    cards_c = {u for p in c.manifest["people"] for u in p["cards"]}
    assert cards_a != cards_c


@pytest.mark.parametrize("people", [300, 1000, 5000])
def test_sizes_match_what_was_asked(people: int) -> None:
    m = generate_campus(seed=1, people=people, colleges=3, dormitories=2, today=TODAY).manifest
    assert len(m["people"]) == people
    kinds = Counter(p["kind"] for p in m["people"])
    assert kinds["visitor"] == max(3, people // 100)
    assert kinds["staff"] == max(6, people // 10)
    assert kinds["student"] == people - kinds["visitor"] - kinds["staff"]
    assert sum(1 for p in m["people"] if p.get("active") is False) == max(3, people // 200)
    assert len(m["health"]) == 3
    assert sum(1 for z in m["zones"] if z["kind"] == "dormitory") == 2
    colleges = [o for o in m["org_units"] if o["name"].startswith("School of")]
    assert len(colleges) == 3 and all(o["parent"] == "univ" for o in colleges)
    classes = [o for o in m["org_units"] if " Class " in o["name"]]
    assert len(classes) == 3 * 2 * 4  # colleges x departments x years


def test_explicit_counts() -> None:
    m = generate_campus(
        seed=3, people=400, staff=50, visitors=10, inactive=7, isolated=2, today=TODAY
    ).manifest
    kinds = Counter(p["kind"] for p in m["people"])
    assert (kinds["staff"], kinds["visitor"], kinds["student"]) == (50, 10, 340)
    assert sum(1 for p in m["people"] if p.get("active") is False) == 7
    assert len(m["health"]) == 2


def test_too_small_a_campus_is_refused() -> None:
    with pytest.raises(ValueError):
        generate_campus(people=20, today=TODAY)


def test_no_card_is_held_twice_and_uids_are_4_or_7_bytes(campus: Campus) -> None:
    cards = [u for p in campus.manifest["people"] for u in p["cards"]]
    assert len(cards) == len(set(cards)) and len(cards) >= 3000
    assert len({u.upper() for u in cards}) == len(cards)
    assert all(re.fullmatch(r"[0-9A-F]{8}|04[0-9A-F]{12}", u) for u in cards)
    assert campus.facts.outsider_card not in set(cards)


def test_every_reference_resolves(campus: Campus) -> None:
    m = campus.manifest
    units = {o["id"] for o in m["org_units"]}
    zones = {z["id"]: z for z in m["zones"]}
    doors = {d["id"]: d for d in m["doors"]}
    people = {p["id"]: p for p in m["people"]}
    for section in ("org_units", "zones", "doors", "devices", "people"):
        ids = [row["id"] for row in m[section]]
        assert len(ids) == len(set(ids)), section
    assert all(o.get("parent") in units for o in m["org_units"] if "parent" in o)
    assert all(
        z["kind"] in ("dormitory", "lab", "office", "teaching", "gate", "other") for z in m["zones"]
    )
    for d in m["doors"]:
        assert d["zone"] in zones and d["direction"] in ("in", "out", "both")
    for dev in m["devices"]:
        assert dev["door"] in doors and dev["transport"] == "mqtt"
        assert dev["id"] == f"term-{dev['door']}" and dev["kind"] == "terminal"
    assert {dev["door"] for dev in m["devices"]} == set(doors)  # one terminal a door
    for p in m["people"]:
        assert p["org_unit"] in units and p["kind"] in ("student", "staff", "visitor")
    for g in m["grants"]:
        assert g["zone"] in zones
        ((kind, ref),) = g["subject"].items()
        assert {"person": people, "org_unit": units, "kind": {"student", "staff", "visitor"}}[kind]
        assert (
            ref
            in {"person": people, "org_unit": units, "kind": {"student", "staff", "visitor"}}[kind]
        )
    for h in m["health"]:
        assert people[h["person"]]["kind"] in ("student", "staff")
        assert people[h["caretaker"]]["kind"] == "staff"
        assert h["status"] == "home_isolation" and h["reason"] == "returned from an epidemic area"
        assert date.fromisoformat(h["until"]) > TODAY


def test_shape_of_the_campus(campus: Campus) -> None:
    m = campus.manifest
    doors = {d["id"]: d for d in m["doors"]}
    for z in m["zones"]:
        if z["kind"] == "dormitory":
            main, exit_ = doors[f"{z['id']}-main"], doors[f"{z['id']}-exit"]
            assert main["direction"] == "in" and main["requires_temperature"] is True
            assert exit_["direction"] == "out" and "requires_temperature" not in exit_
        if z["kind"] == "lab":
            assert doors[f"{z['id']}-door"]["direction"] == "both"
    lab_grants = [g for g in m["grants"] if g["zone"].startswith("lab-")]
    assert lab_grants and all(g["schedule"] == "Mon-Fri 07:00-23:00" for g in lab_grants)
    assert all("org_unit" in g["subject"] for g in lab_grants)
    gate_subjects = {g["subject"].get("kind") for g in m["grants"] if g["zone"] == "gate"}
    assert gate_subjects == {"student", "staff", "visitor"}
    office_ids = {o["id"] for o in m["org_units"]}
    assert {"student-affairs", "school-office"} <= office_ids
    # Dormitories have room for their residents.
    residents = Counter(g["zone"] for g in m["grants"] if "person" in g["subject"])
    for z in m["zones"]:
        if z["kind"] == "dormitory":
            assert residents[z["id"]] < z["capacity"]


def test_facts_name_the_right_people(campus: Campus) -> None:
    m, f = campus.manifest, campus.facts
    holder = {u: p for p in m["people"] for u in p["cards"]}
    dorm_grant = {
        g["subject"]["person"]: g["zone"] for g in m["grants"] if "person" in g["subject"]
    }
    health = {h["person"]: h for h in m["health"]}
    door = next(d for d in m["doors"] if d["id"] == f.temperature_door)
    assert door["requires_temperature"] and door["zone"] == f.dorm
    assert f.temperature_device == f"term-{f.temperature_door}"

    def clear_active(card: str) -> dict:
        p = holder[card]
        assert p.get("active", True) and p["id"] not in health
        return p

    for card in f.resident_cards + f.fever_cards:
        p = clear_active(card)
        assert p["kind"] == "student" and dorm_grant[p["id"]] == f.dorm
    assert len(f.fever_cards) == 5 and not set(f.fever_cards) & set(f.resident_cards)
    assert len(f.resident_cards) >= 8
    isolated = holder[f.isolated_card]
    assert isolated["id"] == f.isolated_person and dorm_grant[f.isolated_person] == f.dorm
    assert health[f.isolated_person]["caretaker"] == f.caretaker
    inactive = holder[f.inactive_card]
    assert inactive["id"] == f.inactive_person and inactive["active"] is False
    assert dorm_grant[f.inactive_person] == f.dorm
    assert f.outsider_card not in holder
    # The stranger's college has no grant for the lab; the member's does.
    lab_units = {g["subject"].get("org_unit") for g in m["grants"] if g["zone"] == f.lab}
    assert lab_units == {f.lab_college}
    stranger = clear_active(f.lab_stranger_card)
    member = clear_active(f.lab_member_card)
    assert not stranger["org_unit"].startswith(f.lab_college + "-")
    assert member["org_unit"].startswith(f.lab_college + "-")
    assert clear_active(f.staff_card)["kind"] == "staff"
    assert clear_active(f.visitor_card)["kind"] == "visitor"
    assert f.device_doors[f.lab_device] == f.lab_door and f.door_zones[f.lab_door] == f.lab


def test_separate_scanners() -> None:
    c = generate_campus(seed=5, people=300, separate_scanners=True, today=TODAY)
    scanners = [d for d in c.manifest["devices"] if d["kind"] == "temperature_scanner"]
    assert {d["door"] for d in scanners} == set(c.facts.temperature_doors)
    assert c.facts.scanner_device == f"scan-{c.facts.temperature_door}"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_write_manifest_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"campus{suffix}"
    facts = write_manifest(path, seed=9, people=300, today=TODAY)
    text = path.read_text()
    loaded = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    expected = generate_campus(seed=9, people=300, today=TODAY)
    assert loaded == expected.manifest and facts == expected.facts
    if suffix == ".yaml":
        # ids, cards and dates stay strings even for a YAML 1.2 reader.
        assert re.search(r'- id: "\d{10}"', text)
        assert re.search(r'until: "\d{4}-\d\d-\d\d"', text)


def _fingerprint(campus: Campus) -> str:
    """A digest of everything a campus is (the manifest, every fact, in order), so a
    refactoring of the generator that changes one card or one row changes it."""

    def plain(value: object) -> object:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, frozenset | set):
            return sorted(plain(v) for v in value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    blob = json.dumps({"manifest": campus.manifest, "facts": plain(campus.facts)})
    return hashlib.sha256(blob.encode()).hexdigest()


@pytest.mark.parametrize(
    ("options", "digest"),
    [
        (
            {"seed": 7, "people": 3000},
            "04c4251d25d8ddac40da7038abe8902f972db8415d3332262666e4fcc7d5a617",
        ),
        (
            {
                "seed": 2020,
                "people": 500,
                "colleges": 3,
                "dormitories": 2,
                "teaching_buildings": 3,
                "labs_per_college": 4,
                "isolated": 2,
                "separate_scanners": True,
            },
            "9b0aa123e358a2e83b47ea4c851b902a09c207d62267272d6b848a7808eeccbb",
        ),
    ],
)
def test_a_seed_generates_the_same_campus_as_before(options: dict[str, Any], digest: str) -> None:
    """Pinned before the generator became table-driven: the same seed, size and day must
    keep giving the very same campus (demo databases and recorded figures rely on it)."""
    assert _fingerprint(generate_campus(today=TODAY, **options)) == digest
