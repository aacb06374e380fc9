from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from gateway.domain.health import HealthRecord, HealthStatus, isolation_day
from gateway.services.caretaking import REASSIGN_ACTOR, choose_caretakers, reassign_cases
from gateway.services.errors import InvalidReferenceError
from gateway.services.health import change_status
from gateway.services.importer import ManifestError, import_file
from gateway.services.tracing import mark_close_contacts
from gateway.services.travel import TravelRules, Trip, add_area, declare
from gateway.store.caretaking import caretaker_cases
from gateway.store.db import connect
from gateway.store.health import lock_people, set_health

TZ = ZoneInfo("Asia/Shanghai")
RULES = TravelRules(isolation_days=14, tz=TZ)


async def _isolate(conn: asyncpg.Connection, pid: str, caretaker: str, *, days: int = 5) -> None:
    now = datetime.now(UTC)
    record = HealthRecord(
        pid, HealthStatus.HOME_ISOLATION, now, now + timedelta(days=days), "t", caretaker, "t"
    )
    await set_health(conn, record, changed_by="t")


async def test_nearest_unit_with_active_staff(campus: asyncpg.Connection) -> None:
    # cs-1-a has no staff; cs-1 only an inactive one; cs has T1 and T2 (ties by id).
    chosen = await choose_caretakers(campus, ["S1", "S4", "S5", "nobody"])
    assert chosen == {"S1": "T1", "S4": "T3", "S5": None, "nobody": None}


async def test_least_loaded_and_spread_within_one_call(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S3", "T1")
    chosen = await choose_caretakers(campus, ["S1", "S2"])
    # T1 holds one case already: T2 gets the first, then they are even again (T1 by id).
    assert chosen == {"S1": "T2", "S2": "T1"}


async def test_expired_cases_do_not_count_as_load(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S3", "T1", days=-1)
    assert await choose_caretakers(campus, ["S1"]) == {"S1": "T1"}


async def test_never_the_person_themself(campus: asyncpg.Connection) -> None:
    chosen = await choose_caretakers(campus, ["T3", "T1"])
    assert chosen == {"T3": None, "T1": "T2"}


# --- caretakers who can care (issue 9, point 2) ---------------------------------------


async def _hold(conn: asyncpg.Connection, pid: str, status: HealthStatus) -> None:
    """Put `pid` under a hold as the gateway's journal or an import would (no service)."""
    record = HealthRecord(pid, status, datetime.now(UTC), None, "held", None, "gateway")
    await set_health(conn, record, changed_by="gateway")


async def _history(conn: asyncpg.Connection, pid: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT status, caretaker_id, reason, changed_by FROM health_history "
        "WHERE person_id = $1 ORDER BY id",
        pid,
    )


@pytest.mark.parametrize("status", [HealthStatus.FEVER_WATCH, HealthStatus.CLOSE_CONTACT])
async def test_held_staff_are_never_chosen(
    campus: asyncpg.Connection, status: HealthStatus
) -> None:
    await _hold(campus, "T1", status)
    # T1 has no load, so was the first choice; held, it is no choice at all.
    assert await choose_caretakers(campus, ["S1", "S2"]) == {"S1": "T2", "S2": "T2"}
    await _hold(campus, "T2", HealthStatus.SUSPECTED)
    assert await choose_caretakers(campus, ["S1"]) == {"S1": None}


async def test_a_hold_that_has_ended_does_not_count(campus: asyncpg.Connection) -> None:
    now = datetime.now(UTC)
    record = HealthRecord(
        "T1", HealthStatus.CLOSE_CONTACT, now - timedelta(days=3), now - timedelta(seconds=1)
    )
    await set_health(campus, record, changed_by="t")
    await _hold(campus, "T2", HealthStatus.RECOVERED)
    assert await choose_caretakers(campus, ["S1", "S2"]) == {"S1": "T1", "S2": "T2"}


async def test_naming_a_held_caretaker_is_refused(campus: asyncpg.Connection) -> None:
    await _hold(campus, "T1", HealthStatus.FEVER_WATCH)
    with pytest.raises(InvalidReferenceError, match="'T1' is fever_watch and cannot care"):
        await change_status(
            campus, "S1", HealthStatus.HOME_ISOLATION, by="ho", reason="r", caretaker_id="T1"
        )
    assert await campus.fetchval("SELECT count(*) FROM health_status WHERE person_id='S1'") == 0
    done = await change_status(
        campus, "S1", HealthStatus.HOME_ISOLATION, by="ho", reason="r", caretaker_id="T2"
    )
    assert (done["caretaker_id"], done["reassigned"]) == ("T2", [])


async def test_staff_marked_in_one_batch_care_for_none_of_the_others(
    campus: asyncpg.Connection,
) -> None:
    # T1 and T2 have no load yet: before, they were picked for each other and for S1/S2.
    outcome = await mark_close_contacts(
        campus, "S4", ["T1", "S1", "T2", "S2"], reason="shared office", by="ho", isolation_days=14
    )
    assert dict(outcome.marked) == {"T1": None, "S1": None, "T2": None, "S2": None}
    await campus.execute("UPDATE health_status SET status = 'clear', until = NULL")
    outcome = await mark_close_contacts(
        campus, "S4", ["T1", "S1", "S2"], reason="lab", by="ho", isolation_days=14
    )
    assert dict(outcome.marked) == {"T1": "T2", "S1": "T2", "S2": "T2"}


async def test_a_caretaker_put_under_a_hold_hands_the_cases_on(
    campus: asyncpg.Connection,
) -> None:
    await _isolate(campus, "S1", "T1")
    await _isolate(campus, "S2", "T1")
    await _isolate(campus, "S4", "T3")
    changed = await change_status(campus, "T1", HealthStatus.CONFIRMED, by="ho", reason="PCR+")
    # T1's own caretaker is T2 (cs); S1 and S2 go to T2 too, the only cs staff left.
    assert changed["caretaker_id"] == "T2"
    assert [
        (r["person_id"], r["previous_caretaker_id"], r["caretaker_id"])
        for r in changed["reassigned"]
    ] == [("S1", "T1", "T2"), ("S2", "T1", "T2")]
    s1 = await campus.fetchrow(
        "SELECT status, caretaker_id, reason FROM health_status WHERE person_id='S1'"
    )
    assert tuple(s1) == ("home_isolation", "T2", "t")  # the status and its reason are kept
    last = (await _history(campus, "S1"))[-1]
    assert (last["caretaker_id"], last["changed_by"]) == ("T2", "ho")
    assert last["reason"] == "caretaker T1 is confirmed: reassigned to T2"
    audited = await campus.fetch(
        "SELECT entity_id FROM audit_log WHERE action = 'reassign_caretaker' ORDER BY entity_id"
    )
    assert [r[0] for r in audited] == ["S1", "S2"]
    # Nobody left to care for math: S4 stays without caretaker, and the history says so.
    changed = await change_status(campus, "T3", HealthStatus.SUSPECTED, by="ho", reason="fever")
    [moved] = changed["reassigned"]
    assert (moved["person_id"], moved["caretaker_id"]) == ("S4", None)
    assert "no eligible caretaker" in moved["reason"]
    assert (
        await campus.fetchval("SELECT caretaker_id FROM health_status WHERE person_id='S4'") is None
    )
    assert (await _history(campus, "S4"))[-1]["reason"] == moved["reason"]


async def test_clearing_a_caretaker_reassigns_nobody(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S1", "T1")
    changed = await change_status(campus, "T1", HealthStatus.RECOVERED, by="ho", reason="ok")
    assert changed["reassigned"] == []
    assert (
        await campus.fetchval("SELECT caretaker_id FROM health_status WHERE person_id='S1'") == "T1"
    )


async def test_marking_a_caretaker_close_contact_reassigns_their_cases(
    campus: asyncpg.Connection,
) -> None:
    await _isolate(campus, "S1", "T1")
    outcome = await mark_close_contacts(
        campus, "S4", ["T1"], reason="met", by="ho", isolation_days=14
    )
    assert [(r.person_id, r.previous_caretaker_id, r.caretaker_id) for r in outcome.reassigned] == [
        ("S1", "T1", "T2")
    ]
    assert (await _history(campus, "S1"))[-1]["reason"].startswith("caretaker T1 is close_contact")


async def test_a_hold_set_at_a_door_is_swept_by_the_job(campus: asyncpg.Connection) -> None:
    await _isolate(campus, "S1", "T1")
    await _hold(campus, "T1", HealthStatus.FEVER_WATCH)  # the journal writes it, no service
    moved = await reassign_cases(campus, by=REASSIGN_ACTOR)
    assert [(r.person_id, r.caretaker_id) for r in moved] == [("S1", "T2")]
    assert (await _history(campus, "S1"))[-1]["changed_by"] == REASSIGN_ACTOR
    assert await reassign_cases(campus, by=REASSIGN_ACTOR) == []  # done once


async def test_travel_isolating_a_caretaker_reassigns_their_cases(
    campus: asyncpg.Connection,
) -> None:
    await _isolate(campus, "S1", "T1")
    today = datetime.now(TZ).date()
    area = {
        "name": "Wuhan",
        "match": "wuhan",
        "effective_from": today - timedelta(days=30),
        "effective_until": None,
    }
    await add_area(campus, area, RULES, by="ho")
    trip = Trip("T1", "Wuhan", today - timedelta(days=8), today - timedelta(days=5))
    _, evaluation = await declare(campus, [trip], RULES, by="ho")
    assert (evaluation.isolated, evaluation.reassigned) == (["T1"], ["S1"])
    assert (
        await campus.fetchval("SELECT caretaker_id FROM health_status WHERE person_id='S1'") == "T2"
    )


def _manifest(tmp_path: Path, health: str) -> Path:
    path = tmp_path / "health.yaml"
    path.write_text("health:\n" + health)
    return path


async def test_an_import_naming_a_held_caretaker_is_refused(
    campus: asyncpg.Connection, tmp_path: Path
) -> None:
    await _hold(campus, "T1", HealthStatus.CLOSE_CONTACT)
    path = _manifest(tmp_path, "  - {person: S1, status: home_isolation, caretaker: T1}\n")
    with pytest.raises(ManifestError) as refused:
        await import_file(campus, path, tz=TZ)
    assert str(refused.value).startswith("health.yaml: health[0] (person S1): caretaker 'T1'")
    assert "close_contact" in str(refused.value) and "\n" not in str(refused.value)
    # A hold set by the same file counts too.
    path = _manifest(
        tmp_path,
        "  - {person: T2, status: suspected}\n"
        "  - {person: S2, status: home_isolation, caretaker: T2}\n",
    )
    with pytest.raises(
        ManifestError, match=r"health\[1\] \(person S2\): caretaker 'T2' is suspected"
    ):
        await import_file(campus, path, tz=TZ)
    assert await campus.fetchval("SELECT count(*) FROM health_status WHERE person_id <> 'T1'") == 0


async def test_an_import_holding_a_caretaker_reassigns_their_cases(
    campus: asyncpg.Connection, tmp_path: Path
) -> None:
    await _isolate(campus, "S1", "T1")
    await import_file(campus, _manifest(tmp_path, "  - {person: T1, status: confirmed}\n"), tz=TZ)
    row = await campus.fetchrow("SELECT caretaker_id FROM health_status WHERE person_id='S1'")
    assert row["caretaker_id"] == "T2"


# --- the day of isolation counts from the return (issue 9, point 5) -------------------


async def test_a_returnee_back_five_days_is_on_day_six(campus: asyncpg.Connection) -> None:
    today = datetime.now(TZ).date()
    area = {
        "name": "Wuhan",
        "match": "wuhan",
        "effective_from": today - timedelta(days=30),
        "effective_until": None,
    }
    await add_area(campus, area, RULES, by="ho")
    back = today - timedelta(days=5)
    trip = Trip("S1", "Wuhan", back - timedelta(days=3), back)
    await declare(campus, [trip], RULES, by="liaison")
    row = await campus.fetchrow("SELECT since, until FROM health_status WHERE person_id = 'S1'")
    start = datetime.combine(back, time(), tzinfo=TZ)
    assert (row["since"], row["until"]) == (start, start + timedelta(days=14))
    now = datetime.now(UTC)
    [case] = await caretaker_cases(campus, now, caretaker_id=None, org_scope=None)
    assert (case["person_id"], isolation_day(case["since"], now, TZ)) == ("S1", 6)
    # A later trip lengthens the isolation; it still began at the first return.
    later = Trip("S1", "Wuhan", today - timedelta(days=2), today - timedelta(days=1))
    _, evaluation = await declare(campus, [later], RULES, by="liaison")
    assert evaluation.extended == ["S1"]
    row = await campus.fetchrow("SELECT since, until FROM health_status WHERE person_id = 'S1'")
    assert row["since"] == start
    assert row["until"] == datetime.combine(today + timedelta(days=13), time(), tzinfo=TZ)


async def test_a_large_batch_on_a_generated_campus_assigns_no_held_caretaker(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Marking a quarter of a generated campus at once (staff among them) as tracing does:
    every caretaker chosen is staff who is neither in the batch nor otherwise held."""
    from firmware_sim.campus import dump_manifest, generate_campus

    campus = generate_campus(seed=7, people=400)
    path = tmp_path / "campus.yaml"
    dump_manifest(campus.manifest, path)
    await import_file(conn, path, tz=TZ)
    people = [p for p in campus.facts.people if p.active and p.kind in ("student", "staff")]
    batch = [p.id for p in people[::4]]
    assert any(p.kind == "staff" for p in people[::4])
    outcome = await mark_close_contacts(
        conn, people[1].id, batch, reason="shared a lecture", by="ho", isolation_days=14
    )
    chosen = {carer for _, carer in outcome.marked if carer is not None}
    assert chosen, "some caretaker was chosen"
    held = await conn.fetch(
        "SELECT person_id FROM health_status WHERE person_id = ANY($1::text[]) "
        "AND status NOT IN ('clear', 'recovered') AND (until IS NULL OR until > now())",
        sorted(chosen),
    )
    assert held == []


async def test_a_case_locked_elsewhere_is_left_to_the_sweep_not_waited_for(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    """Holding T1's lock while waiting for S1's could deadlock against a transaction that
    holds S1 and wants T1: the reassignment skips S1 and the job takes it up later."""
    await _isolate(campus, "S1", "T1")
    await _isolate(campus, "S2", "T1")
    other = await connect(fresh_db)
    try:
        busy = other.transaction()
        await busy.start()
        await lock_people(other, ["S1"])
        changed = await asyncio.wait_for(
            change_status(campus, "T1", HealthStatus.CONFIRMED, by="ho", reason="PCR+"), 10
        )
        assert [r["person_id"] for r in changed["reassigned"]] == ["S2"]
        await busy.rollback()
    finally:
        await other.close()
    moved = await reassign_cases(campus, by=REASSIGN_ACTOR)
    assert [(r.person_id, r.caretaker_id) for r in moved] == [("S1", "T2")]
