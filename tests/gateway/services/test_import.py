from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.domain.health import HealthStatus
from gateway.services.importer import ManifestError, import_file
from gateway.store.db import connect
from gateway.store.health import health_history
from gateway.store.roster import load_roster
from gateway.store.roster_write import UpsertCounts

TZ = ZoneInfo("Asia/Shanghai")
ROSTER_TABLES = (
    "org_units",
    "zones",
    "doors",
    "devices",
    "people",
    "cards",
    "grants",
    "health_status",
    "health_history",
)

CAMPUS: dict[str, Any] = {
    "org_units": [
        {"id": "cs", "name": "School of Computer Science"},
        {"id": "cs-2020-1", "name": "Class 2020-1", "parent": "cs"},
    ],
    "zones": [
        {"id": "dorm-10", "name": "Dormitory 10", "kind": "dormitory", "capacity": 800},
        {"id": "lab-ai", "name": "AI Lab", "kind": "lab", "capacity": 20},
    ],
    "doors": [
        {"id": "dorm-10-main", "zone": "dorm-10", "direction": "in", "requires_temperature": True},
        {"id": "dorm-10-exit", "zone": "dorm-10", "direction": "out"},
        {"id": "lab-ai-door", "zone": "lab-ai"},
    ],
    "devices": [
        {"id": "term-d10-1", "door": "dorm-10-main", "kind": "terminal", "transport": "mqtt"},
        {
            "id": "rdr-lab-1",
            "door": "lab-ai-door",
            "kind": "card_reader",
            "transport": "serial",
            "port": "/dev/ttyUSB0",
            "protocol": "rdm6300",
        },
    ],
    "people": [
        {
            "id": "2020110001",
            "kind": "student",
            "name": "Li Hua",
            "org_unit": "cs-2020-1",
            "cards": ["04a1b2c3d4"],
        },
        {
            "id": "2020110002",
            "kind": "student",
            "name": "Wang Fang",
            "org_unit": "cs-2020-1",
            "valid_until": "2027-07-01",
            "cards": [{"uid": "04A1B2C3D5", "revoked": True, "valid_until": "2027-06-30"}],
        },
        {"id": "T0001", "kind": "staff", "name": "Chen Jie", "org_unit": "cs"},
        {
            "id": "V0042",
            "kind": "visitor",
            "name": "Zhao Lei",
            "org_unit": "cs",
            "active": False,
            "cards": ["0A0B0C0D"],
        },
    ],
    "grants": [
        {"subject": {"org_unit": "cs"}, "zone": "lab-ai", "schedule": "Mon-Fri 07:00-23:00"},
        {"subject": {"person": "2020110001"}, "zone": "dorm-10"},
        {"subject": {"kind": "staff"}, "zone": "dorm-10", "valid_until": "2027-01-31"},
    ],
    "health": [
        {
            "person": "2020110002",
            "status": "home_isolation",
            "until": "2026-12-10",
            "reason": "returned from an epidemic area",
            "caretaker": "T0001",
        },
    ],
}


def write(tmp_path: Path, document: Any, name: str = "campus.json") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(document))
    elif name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    else:
        path.write_text(document)
    return path


async def row_counts(conn) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ROSTER_TABLES}


async def test_contract_example_imports_and_second_import_changes_nothing(
    conn, tmp_path, roster_listener
) -> None:
    path = write(tmp_path, CAMPUS, "campus.yaml")
    stages: list[str] = []
    first = await import_file(conn, path, tz=TZ, progress=lambda s, d, t: stages.append(s))
    assert first.sections["people"] == UpsertCounts(4, 0, 0)
    assert first.sections["cards"] == UpsertCounts(3, 0, 0)
    assert first.sections["health"] == UpsertCounts(1, 0, 0)
    assert {"read", "check", "people", "health"} <= set(stages)
    assert await roster_listener.settle()

    stamps = await conn.fetch("SELECT id, updated_at FROM people ORDER BY id")
    second = await import_file(conn, path, tz=TZ)
    assert not second.changed
    assert all(c.inserted == 0 and c.updated == 0 for c in second.sections.values())
    assert second.sections["grants"] == UpsertCounts(0, 0, 3)
    assert await conn.fetch("SELECT id, updated_at FROM people ORDER BY id") == stamps
    assert await roster_listener.settle() == []  # no useless roster reload
    assert await conn.fetchval("SELECT count(*) FROM health_history") == 1
    audit = await conn.fetch("SELECT operator, action, entity_id, after FROM audit_log")
    assert [(a["operator"], a["action"], a["entity_id"]) for a in audit] == [
        ("import", "import", "campus.yaml")
    ]
    assert audit[0]["after"]["people"] == [4, 0, 0]

    roster = await load_roster(conn)
    li = next(p for p in roster.people if p.id == "2020110002")
    assert li.valid_until == datetime(2027, 7, 1, tzinfo=TZ)  # a date: start of day, campus zone
    assert {c.uid for c in roster.cards} == {"04A1B2C3D4", "04A1B2C3D5", "0A0B0C0D"}
    assert next(p for p in roster.people if p.id == "V0042").active is False
    assert roster.health[0].set_by == "import"
    assert roster.health[0].until == datetime(2026, 12, 10, tzinfo=TZ)


async def test_changed_row_is_updated_and_others_untouched(conn, tmp_path) -> None:
    await import_file(conn, write(tmp_path, CAMPUS), tz=TZ)
    changed = copy.deepcopy(CAMPUS)
    changed["zones"][0]["capacity"] = 900
    changed["people"][0]["active"] = False
    report = await import_file(conn, write(tmp_path, changed), tz=TZ)
    assert report.sections["zones"] == UpsertCounts(0, 1, 1)
    assert report.sections["people"] == UpsertCounts(0, 1, 3)


async def test_health_row_replaces_status_and_keeps_history(conn, tmp_path) -> None:
    await import_file(conn, write(tmp_path, CAMPUS), tz=TZ)
    update = {
        "health": [{"person": "2020110002", "status": "recovered", "reason": "negative test"}]
    }
    report = await import_file(conn, write(tmp_path, update, "h.json"), tz=TZ, operator="officer")
    assert report.sections == {"health": UpsertCounts(0, 1, 0)}
    history = await health_history(conn, "2020110002")
    assert [(h.status, who) for h, who, _ in history] == [
        (HealthStatus.HOME_ISOLATION, "import"),
        (HealthStatus.RECOVERED, "officer"),
    ]
    current = (await load_roster(conn)).health
    assert [(h.status, h.set_by, h.caretaker_id) for h in current] == [
        (HealthStatus.RECOVERED, "officer", None)
    ]


async def test_people_csv(conn, tmp_path) -> None:
    await import_file(conn, write(tmp_path, {"org_units": CAMPUS["org_units"]}), tz=TZ)
    csv_text = (
        "id,kind,name,org_unit,card_uid\n"
        "2020110001,student,Li Hua,cs-2020-1,04A1B2C3D4\n"
        "2020110001,student,Li Hua,cs-2020-1,04a1b2c3d6\n"
        '"T0001",staff,"Chen, Jie",cs,\n'
        "\n"
    )
    path = write(tmp_path, csv_text, "people.csv")
    report = await import_file(conn, path, tz=TZ)
    assert report.sections == {"people": UpsertCounts(2, 0, 0), "cards": UpsertCounts(2, 0, 0)}
    roster = await load_roster(conn)
    assert {(c.uid, c.person_id) for c in roster.cards} == {
        ("04A1B2C3D4", "2020110001"),
        ("04A1B2C3D6", "2020110001"),
    }
    assert {p.name for p in roster.people} == {"Li Hua", "Chen, Jie"}
    assert (await import_file(conn, path, tz=TZ)).changed is False


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _append(section: str, row: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.setdefault(section, []).append(row)


ERRORS = [
    (
        "unknown_zone",
        _set(("doors", 0, "zone"), "dorm-99"),
        "doors[0] (id dorm-10-main): unknown zone 'dorm-99'",
    ),
    (
        "unknown_door",
        _set(("devices", 1, "door"), "nowhere"),
        "devices[1] (id rdr-lab-1): unknown door 'nowhere'",
    ),
    (
        "unknown_org_unit",
        _set(("people", 2, "org_unit"), "math"),
        "people[2] (id T0001): unknown org unit 'math'",
    ),
    (
        "unknown_parent",
        _set(("org_units", 1, "parent"), "eng"),
        "org_units[1] (id cs-2020-1): unknown parent org unit 'eng'",
    ),
    (
        "unknown_grant_person",
        _set(("grants", 1, "subject"), {"person": "nobody"}),
        "unknown person 'nobody'",
    ),
    (
        "card_twice_in_file",
        _set(("people", 2, "cards"), ["04A1B2C3D4"]),
        "people[2] (id T0001): card 04A1B2C3D4 also appears at people[0] (id 2020110001)",
    ),
    (
        "bad_schedule",
        _set(("grants", 0, "schedule"), "Mon-Fri 7-23"),
        "grants[0] (org_unit:cs -> lab-ai): cannot read schedule",
    ),
    (
        "bad_card_uid",
        _set(("people", 0, "cards"), ["XYZ"]),
        "people[0] (id 2020110001): card_uid 'XYZ' is not an even-length hex string",
    ),
    (
        "card_uid_not_text",
        _set(("people", 0, "cards"), [12345678]),
        "people[0] (id 2020110001): card_uid 12345678 must be quoted text",
    ),
    (
        "bad_enum",
        _set(("zones", 1, "kind"), "laboratory"),
        "zones[1] (id lab-ai): kind 'laboratory' is not one of dormitory, lab",
    ),
    (
        "bad_health_status",
        _set(("health", 0, "status"), "quarantined"),
        "health[0] (person 2020110002): status 'quarantined' is not one of",
    ),
    (
        "bad_date",
        _set(("people", 1, "valid_until"), "2027-13-01"),
        "people[1] (id 2020110002): valid_until: '2027-13-01' is not a date",
    ),
    (
        "missing_field",
        lambda d: d["people"][0].pop("name"),
        "people[0] (id 2020110001): missing name",
    ),
    (
        "unknown_field",
        _set(("zones", 0, "capacty"), 10),
        "zones[0] (id dorm-10): unknown field 'capacty'",
    ),
    (
        "duplicate_id",
        _append("zones", {"id": "lab-ai", "name": "Again", "kind": "lab"}),
        "zones[2] (id lab-ai): zone lab-ai also appears at zones[1] (id lab-ai)",
    ),
    (
        "org_unit_cycle",
        _set(("org_units", 0, "parent"), "cs-2020-1"),
        "org units form a cycle: cs -> cs-2020-1 -> cs",
    ),
    (
        "two_subjects",
        _set(("grants", 0, "subject"), {"org_unit": "cs", "kind": "staff"}),
        "grants[0]: subject must name exactly one of person, org_unit or kind",
    ),
    (
        "serial_without_port",
        lambda d: d["devices"][1].pop("port"),
        "devices[1] (id rdr-lab-1): a serial device needs a port and a protocol",
    ),
    (
        "health_unknown_person",
        _set(("health", 0, "person"), "2020119999"),
        "health[0] (person 2020119999): unknown person '2020119999'",
    ),
    (
        "caretaker_not_staff",
        _set(("health", 0, "caretaker"), "2020110001"),
        "caretaker '2020110001' is a student, not staff",
    ),
    (
        "clear_with_until",
        _set(("health", 0, "status"), "clear"),
        "health[0] (person 2020110002): clear takes no until",
    ),
    ("unknown_section", _set(("rooms",), []), "campus.json: unknown section 'rooms'"),
    (
        "negative_capacity",
        _set(("zones", 0, "capacity"), -1),
        "zones[0] (id dorm-10): capacity must be a whole number of at least 0",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
async def test_every_error_names_file_and_row_and_writes_nothing(
    fresh_db_module: str, tmp_path, mutate, expected: str
) -> None:
    document = copy.deepcopy(CAMPUS)
    mutate(document)
    conn = await connect(fresh_db_module)
    try:
        with pytest.raises(ManifestError) as caught:
            await import_file(conn, write(tmp_path, document), tz=TZ)
        message = str(caught.value)
        assert message.startswith("campus.json: ") and "\n" not in message
        assert expected in message
        assert set((await row_counts(conn)).values()) == {0}
    finally:
        await conn.close()


async def test_card_held_by_another_person_in_the_database(conn, tmp_path) -> None:
    await import_file(conn, write(tmp_path, CAMPUS), tz=TZ)
    before = await row_counts(conn)
    newcomer = {
        "people": [
            {"id": "N1", "kind": "staff", "name": "New", "org_unit": "cs"},
            {"id": "N2", "kind": "staff", "name": "Newer", "org_unit": "cs", "cards": ["0a0b0c0d"]},
        ]
    }
    with pytest.raises(ManifestError, match=r"people\[1\] \(id N2\): card 0A0B0C0D is already"):
        await import_file(conn, write(tmp_path, newcomer), tz=TZ)
    assert await row_counts(conn) == before


async def test_references_to_rows_already_in_the_database(conn, tmp_path) -> None:
    await import_file(conn, write(tmp_path, CAMPUS), tz=TZ)
    more = {
        "org_units": [{"id": "cs-2021-1", "name": "Class 2021-1", "parent": "cs"}],
        "people": [
            {
                "id": "2021110001",
                "kind": "student",
                "name": "Sun Li",
                "org_unit": "cs-2021-1",
                "cards": ["11223344"],
            }
        ],
        "grants": [{"subject": {"person": "2020110002"}, "zone": "lab-ai"}],
    }
    report = await import_file(conn, write(tmp_path, more), tz=TZ)
    assert report.sections["grants"] == UpsertCounts(1, 0, 0)
    # Re-parenting the stored `cs` under its own descendant is a cycle across file and database.
    cycle = {"org_units": [{"id": "cs", "name": "CS", "parent": "cs-2021-1"}]}
    with pytest.raises(ManifestError, match="cycle: cs -> cs-2021-1 -> cs"):
        await import_file(conn, write(tmp_path, cycle), tz=TZ)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "people: [ {id: 1", "bad.yaml: not valid YAML at line"),
        ("bad.json", "{", "bad.json: not valid JSON"),
        ("list.yaml", "- 1\n- 2\n", "list.yaml: expected a mapping of sections, got list"),
        ("p.csv", "id,name\n1,x\n", "p.csv: line 1: the header must be"),
        ("q.csv", "id,kind,name,org_unit,card_uid\n7,robot,R2,,\n", "q.csv: line 2 (id 7): kind"),
    ],
)
async def test_unreadable_files(conn, tmp_path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ManifestError, match=re.escape(expected)):
        await import_file(conn, path, tz=TZ)


def synthetic_campus(n_people: int) -> dict[str, Any]:
    classes = [f"class-{i}" for i in range(200)]
    return {
        "org_units": [{"id": "uni", "name": "University"}]
        + [{"id": c, "name": c, "parent": "uni"} for c in classes],
        "zones": [{"id": f"dorm-{i}", "name": f"Dorm {i}", "kind": "dormitory"} for i in range(20)],
        "people": [
            {
                "id": f"S{i:07d}",
                "kind": "student",
                "name": f"Student {i}",
                "org_unit": classes[i % len(classes)],
                "cards": [f"{i:08X}"] + ([f"{i:014X}"] if i % 5 == 0 else []),
            }
            for i in range(n_people)
        ],
        "grants": [
            {"subject": {"org_unit": c}, "zone": f"dorm-{i % 20}"} for i, c in enumerate(classes)
        ]
        + [
            {"subject": {"person": f"S{i:07d}"}, "zone": "dorm-0", "schedule": "daily 06:00-23:00"}
            for i in range(0, n_people, 10)
        ],
    }


def synthetic_yaml(campus: dict[str, Any]) -> str:
    """The campus as YAML with one flow mapping a row, as people write manifests by hand."""

    def flow(value: Any) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(flow(v) for v in value) + "]"
        return json.dumps(value) if isinstance(value, str) and value[:1].isdigit() else str(value)

    lines = []
    for section, rows in campus.items():
        lines.append(f"{section}:")
        lines.extend(f"  - {flow(row)}" for row in rows)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("suffix", ["yaml"])  # add "json" to compare; both paths are covered
@pytest.mark.slow
async def test_import_of_50k_people_takes_seconds(conn, tmp_path, suffix: str) -> None:
    campus = synthetic_campus(50_000)
    path = tmp_path / f"big.{suffix}"
    path.write_text(synthetic_yaml(campus) if suffix == "yaml" else json.dumps(campus))
    started = time.perf_counter()
    first = await import_file(conn, path, tz=TZ)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = await import_file(conn, path, tz=TZ)
    second_s = time.perf_counter() - started
    print(
        f"\nimport {suffix} 50k people / 60k cards / 5.2k grants: first {first_s:.2f} s, "
        f"second (unchanged) {second_s:.2f} s"
    )
    assert first.sections["people"] == UpsertCounts(50_000, 0, 0)
    assert first.sections["cards"] == UpsertCounts(60_000, 0, 0)
    assert not second.changed


async def test_people_csv_does_not_reactivate_or_unrevoke(conn, tmp_path):
    """A CSV names who people are; who may enter stays as the manifest or an admin set it."""
    from zoneinfo import ZoneInfo

    from gateway.services.importer import import_file
    from gateway.store.roster import load_roster

    tz = ZoneInfo("Asia/Shanghai")
    manifest = tmp_path / "campus.yaml"
    manifest.write_text(
        "org_units: [{id: cs, name: CS}]\n"
        "people:\n"
        '  - {id: "V1", kind: visitor, name: Zhao Lei, org_unit: cs, active: false,\n'
        '     cards: [{uid: "0A0B0C0D", revoked: true}]}\n'
    )
    await import_file(conn, manifest, tz=tz)
    people_csv = tmp_path / "people.csv"
    people_csv.write_text('id,kind,name,org_unit,card_uid\nV1,visitor,"Zhao Lei",cs,0A0B0C0D\n')
    await import_file(conn, people_csv, tz=tz)
    roster = await load_roster(conn)
    person = next(p for p in roster.people if p.id == "V1")
    card = next(c for c in roster.cards if c.uid == "0A0B0C0D")
    assert person.active is False
    assert card.revoked is True
