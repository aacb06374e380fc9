from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.campus import CampusRoster
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import (
    Card,
    Device,
    DeviceKind,
    Door,
    DoorDirection,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    Transport,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import parse_schedule
from gateway.store import roster_write
from gateway.store.devices import device_states, set_device_state, touch_devices
from gateway.store.health import health_history, set_health
from gateway.store.roster import load_health, load_roster

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)

ROSTER = CampusRoster(
    org_units=(OrgUnit("cs", "Computer Science"), OrgUnit("cs-1", "Class 1", "cs")),
    zones=(Zone("dorm", "Dorm", ZoneKind.DORMITORY, 800), Zone("lab", "Lab", ZoneKind.LAB)),
    doors=(
        Door("dorm-in", "dorm", DoorDirection.IN, True, "Main"),
        Door("lab-door", "lab"),
    ),
    devices=(
        Device("term-1", "dorm-in", DeviceKind.TERMINAL),
        Device(
            "rdr-1",
            "lab-door",
            DeviceKind.CARD_READER,
            Transport.SERIAL,
            "/dev/ttyUSB0",
            "rdm6300",
            9600,
        ),
    ),
    people=(
        Person("s1", PersonKind.STUDENT, "Li Hua", "cs-1"),
        Person("t1", PersonKind.STAFF, "Chen Jie", "cs", True, T0 + timedelta(days=365)),
    ),
    cards=(Card("04A1B2C3D4", "s1"), Card("0A0B0C0D", "t1", True, T0 + timedelta(days=30))),
    grants=(
        Grant(GrantSubject(org_unit_id="cs"), "lab", parse_schedule("Mon-Fri 07:00-23:00")),
        Grant(GrantSubject(person_id="s1"), "dorm"),
        Grant(GrantSubject(kind=PersonKind.STAFF), "dorm", None, T0, T0 + timedelta(days=1)),
    ),
    health=(
        HealthRecord(
            "s1",
            HealthStatus.HOME_ISOLATION,
            T0,
            T0 + timedelta(days=14),
            "travel",
            "t1",
            "officer",
        ),
    ),
)


async def _store(conn, roster: CampusRoster) -> None:
    async with conn.transaction():
        await roster_write.upsert_org_units(conn, roster.org_units)
        await roster_write.upsert_zones(conn, roster.zones)
        await roster_write.upsert_doors(conn, roster.doors)
        await roster_write.upsert_devices(conn, roster.devices)
        await roster_write.upsert_people(conn, roster.people)
        await roster_write.upsert_cards(conn, roster.cards)
        await roster_write.upsert_grants(conn, roster.grants)
    for record in roster.health:
        await set_health(conn, record, changed_by="officer")


def _sorted(roster: CampusRoster) -> CampusRoster:
    def by(items, key):
        return tuple(sorted(items, key=key))

    return CampusRoster(
        by(roster.org_units, lambda x: x.id),
        by(roster.zones, lambda x: x.id),
        by(roster.doors, lambda x: x.id),
        by(roster.devices, lambda x: x.id),
        by(roster.people, lambda x: x.id),
        by(roster.cards, lambda x: x.uid),
        by(roster.grants, lambda g: (g.subject.key(), g.zone_id)),
        by(roster.health, lambda x: x.person_id),
    )


async def test_roster_round_trip(conn) -> None:
    await _store(conn, ROSTER)
    assert _sorted(await load_roster(conn)) == _sorted(ROSTER)
    assert await load_health(conn) == ROSTER.health


async def test_upsert_counts_and_idempotence(conn) -> None:
    await _store(conn, ROSTER)
    again = await roster_write.upsert_people(conn, ROSTER.people)
    assert again == roster_write.UpsertCounts(0, 0, 2)
    renamed = (Person("s1", PersonKind.STUDENT, "Li Hua (new)", "cs-1"), ROSTER.people[1])
    assert await roster_write.upsert_people(conn, renamed) == roster_write.UpsertCounts(0, 1, 1)


async def test_health_replacement_keeps_history(conn) -> None:
    await _store(conn, ROSTER)
    cleared = HealthRecord("s1", HealthStatus.CLEAR, T0 + timedelta(days=2), set_by="officer2")
    await set_health(conn, cleared, changed_by="officer2")
    assert await load_health(conn) == (cleared,)
    history = await health_history(conn, "s1")
    assert [(h.status, who) for h, who, _ in history] == [
        (HealthStatus.HOME_ISOLATION, "officer"),
        (HealthStatus.CLEAR, "officer2"),
    ]


async def test_roster_change_notifies_but_heartbeat_does_not(conn, roster_listener) -> None:
    await _store(conn, ROSTER)
    first = await roster_listener.settle()
    assert set(first) >= {"org_units", "zones", "doors", "devices", "people", "cards", "grants"}
    assert "health_status" in first

    await set_device_state(conn, "term-1", online=True, ts=T0, firmware="1.2.0")
    await touch_devices(conn, {"term-1": T0 + timedelta(minutes=1), "rdr-1": T0, "ghost": T0})
    await set_device_state(conn, "term-1", online=False, ts=T0 + timedelta(minutes=2))
    assert await roster_listener.settle() == []
    states = await device_states(conn)
    assert states["term-1"] == (False, T0 + timedelta(minutes=2), "1.2.0")
    assert states["rdr-1"] == (True, T0, None)
    assert "ghost" not in states

    # An upsert that changes nothing is silent too; a real change is not.
    await roster_write.upsert_zones(conn, ROSTER.zones)
    assert await roster_listener.settle() == []
    await roster_write.upsert_zones(conn, (Zone("dorm", "Dorm", ZoneKind.DORMITORY, 900),))
    assert await roster_listener.settle() == ["zones"]
    await conn.execute("DELETE FROM grants")
    assert await roster_listener.settle() == ["grants"]


@pytest.mark.slow
async def test_load_roster_of_50k_people_is_fast(conn) -> None:
    n_people, n_cards = 50_000, 60_000
    await roster_write.upsert_org_units(conn, [OrgUnit("u", "Uni")])
    await roster_write.upsert_zones(conn, [Zone("z", "Z", ZoneKind.GATE)])
    await conn.copy_records_to_table(
        "people",
        records=[(f"p{i}", "student", f"Person {i}", "u") for i in range(n_people)],
        columns=["id", "kind", "name", "org_unit_id"],
    )
    await conn.copy_records_to_table(
        "cards",
        records=[(f"{i:08X}", f"p{i % n_people}") for i in range(n_cards)],
        columns=["uid", "person_id"],
    )
    await conn.copy_records_to_table(
        "grants",
        records=[(f"p{i}", "z", "Mon-Fri 07:00-23:00") for i in range(0, n_people, 10)],
        columns=["subject_person", "zone_id", "schedule"],
    )
    await conn.execute("ANALYZE")
    started = time.perf_counter()
    roster = await load_roster(conn)
    elapsed = time.perf_counter() - started
    print(f"\nload_roster: {n_people} people, {n_cards} cards, 5000 grants in {elapsed:.3f} s")
    assert len(roster.people) == n_people and len(roster.cards) == n_cards
