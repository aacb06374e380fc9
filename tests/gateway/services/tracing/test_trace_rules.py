"""Tracing rules on hand-made passages: overlap, entry proximity, caps, denials, gates,
the second generation, ranking, and marking close contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tracing_rows import at, passage, seed

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.tracing import Method
from gateway.services.tracing import (
    TraceError,
    TraceRequest,
    UnknownPerson,
    contacts_csv,
    mark_close_contacts,
    trace,
)
from gateway.settings import Settings
from gateway.store.health import set_health

SETTINGS = Settings(trace_entry_gap_s=900, trace_max_stay_h=12)
P = passage
ROWS = [
    # A, the index: lab 0-60, the hall (no exits) at 100, the gate at 95, lab again from
    # 200 without an out (capped by A's next passage, the canteen at 260).
    P("A", "lab", 0), P("A", "lab", 60, "out"), P("A", "gate", 95), P("A", "hall", 100),
    P("A", "lab", 200), P("A", "canteen", 260), P("A", "canteen", 290, "out"),
    P("B", "lab", 30), P("B", "lab", 90, "out"),  # 30 min with A
    P("C", "lab", 59.5), P("C", "lab", 70, "out"),  # 30 s: below the minimum overlap
    P("D", "lab", 10, admitted=False),  # denied: never inside
    P("E", "hall", 110),  # entered 10 min after A where no exit is logged
    P("F", "hall", 130),  # 30 min after: too far apart
    P("G", "lab", 230), P("G", "lab", 300, "out"),  # 30 min with A's capped stay
    P("H", "lab", 265), P("H", "lab", 280, "out"),  # after A's capped stay
    P("I", "gate", 96),  # gates are passed, not shared
    # B before meeting A (not traced for the second generation) and after it.
    P("B", "office", -100), P("B", "office", -50, "out"),
    P("K", "office", -90), P("K", "office", -60, "out"),
    P("B", "office", 120), P("B", "office", 180, "out"),
    P("J", "office", 130), P("J", "office", 170, "out"),  # second generation through B
    P("A", "office", 400), P("A", "office", 410, "out"),
]  # fmt: skip
PEOPLE = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "T1"]


@pytest.fixture
async def traced(conn):
    await conn.execute("INSERT INTO zones (id, name, kind) VALUES ('gate', 'Gate', 'gate')")
    await seed(conn, PEOPLE, ROWS)
    return conn


def request(generations: int = 1, **kwargs) -> TraceRequest:
    return TraceRequest("A", start=at(-200), end=at(1000), generations=generations, **kwargs)


async def test_first_generation(traced):
    result = await trace(traced, request(), SETTINGS, by="officer")
    found = {c.person_id: c for c in result.contacts}
    assert set(found) == {"B", "G", "E"}
    assert [c.person_id for c in result.contacts] == ["B", "G", "E"]  # exposure, then id
    b = found["B"]
    assert (b.method, b.zones, b.overlap_s, b.encounters) == (Method.OVERLAP, ("lab",), 1800, 1)
    assert (b.first_encounter, b.last_encounter) == (at(30), at(60))
    assert found["G"].overlap_s == 1800 and found["G"].last_encounter == at(260)
    e = found["E"]
    assert (e.method, e.proximity_encounters, e.exposure_s) == (Method.ENTRY_PROXIMITY, 1, 900)
    assert all(c.generation == 1 for c in result.contacts)
    assert result.name == "Name A"


async def test_second_generation(traced):
    result = await trace(traced, request(2), SETTINGS, by="officer")
    second = [c for c in result.contacts if c.generation == 2]
    # J met B after B met A, H met G, C met B; not K (before B met A), nor A, B, G, E.
    assert [c.person_id for c in second] == ["J", "H", "C"]
    assert [c.overlap_s for c in second] == [40 * 60, 15 * 60, 10.5 * 60]


async def test_window_limits_and_audit(traced):
    result = await trace(traced, request(limit=1), SETTINGS, by="officer")
    assert [c.person_id for c in result.contacts] == ["B"] and result.truncated
    later = TraceRequest("A", start=at(150), end=at(1000))
    assert {c.person_id for c in (await trace(traced, later, SETTINGS, by="x")).contacts} == {"G"}
    audit = await traced.fetch(
        "SELECT operator, after FROM audit_log WHERE action = 'trace' AND entity_id = 'A'"
    )
    assert [r["operator"] for r in audit] == ["officer", "x"]
    assert audit[0]["after"]["generations"] == 1


async def test_csv_has_header_and_names(traced):
    text = contacts_csv(await trace(traced, request(), SETTINGS, by="officer"))
    lines = text.splitlines()
    assert lines[0].startswith("generation,person_id,name,method,exposure_s")
    assert lines[1].split(",")[:4] == ["1", "B", "Name B", "overlap"]
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days must be"),
        ({"generations": 3}, "generations"),
        ({"start": at(10), "end": at(5)}, "start before"),
        ({"start": datetime(2026, 1, 1), "end": at(5)}, "offset"),
        ({"start": at(0), "days": 3}, "either"),
    ],
)
async def test_bad_requests(traced, kwargs, message):
    with pytest.raises(TraceError, match=message):
        await trace(traced, TraceRequest("A", **kwargs), SETTINGS, by="x")


async def test_unknown_person(traced):
    with pytest.raises(UnknownPerson):
        await trace(traced, TraceRequest("nobody"), SETTINGS, by="x")


async def test_mark_close_contacts(traced):
    now = datetime.now(UTC)
    await set_health(
        traced,
        HealthRecord("E", HealthStatus.CONFIRMED, now, reason="positive test"),
        changed_by="officer",
    )
    await set_health(
        traced,
        HealthRecord("J", HealthStatus.HOME_ISOLATION, now, now + timedelta(days=30), "trip"),
        changed_by="officer",
    )
    outcome = await mark_close_contacts(
        traced, "A", ["B", "G", "E", "J", "A"], reason="A confirmed", by="officer",
        isolation_days=14, now=now,
    )  # fmt: skip
    assert [p for p, _ in outcome.marked] == ["B", "G"]
    assert all(caretaker == "T1" for _, caretaker in outcome.marked)
    skipped = dict(outcome.skipped)
    assert set(skipped) == {"E", "J", "A"}
    assert "confirmed" in skipped["E"] and "home_isolation" in skipped["J"]
    row = await traced.fetchrow(
        "SELECT status, until, caretaker_id FROM health_status WHERE person_id = 'B'"
    )
    assert row["status"] == "close_contact" and row["caretaker_id"] == "T1"
    assert row["until"] == now + timedelta(days=14)
    assert (
        await traced.fetchval("SELECT status FROM health_status WHERE person_id = 'E'")
        == "confirmed"
    )
    history = await traced.fetchval("SELECT count(*) FROM health_history WHERE person_id = 'B'")
    assert history == 1
    audit = await traced.fetchrow(
        "SELECT operator, after FROM audit_log WHERE action = 'mark_close_contacts'"
    )
    assert audit["operator"] == "officer" and audit["after"]["marked"] == ["B", "G"]
    with pytest.raises(UnknownPerson):
        await mark_close_contacts(
            traced, "A", ["nobody"], reason="x", by="officer", isolation_days=14
        )


async def test_mark_waits_for_an_officers_concurrent_change_and_respects_it(traced, fresh_db):
    """An officer confirming B while the mark runs: the mark sees `confirmed` and skips B."""
    import asyncio

    from gateway.services.health import lock_people
    from gateway.store.db import connect

    officer = await connect(fresh_db)
    try:
        tx = officer.transaction()
        await tx.start()
        await lock_people(officer, ["B"])
        await set_health(
            officer,
            HealthRecord("B", HealthStatus.CONFIRMED, datetime.now(UTC), reason="positive"),
            changed_by="officer",
        )
        marking = asyncio.create_task(
            mark_close_contacts(
                traced, "A", ["B", "G"], reason="A confirmed", by="tracer", isolation_days=14
            )
        )
        await asyncio.sleep(0.3)
        assert not marking.done()  # it waits for the officer's lock
        await tx.commit()
        outcome = await asyncio.wait_for(marking, 10)
    finally:
        await officer.close()
    assert [p for p, _ in outcome.marked] == ["G"]
    assert "confirmed" in dict(outcome.skipped)["B"]
    status = await traced.fetchval("SELECT status FROM health_status WHERE person_id = 'B'")
    assert status == "confirmed"
