from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.services.errors import InvalidReferenceError
from gateway.services.health import (
    StatusConflict,
    change_status,
    expire_statuses,
    record_reading,
    resolve_fever_watch,
)
from gateway.store.db import connect
from gateway.store.health import health_history, set_health


async def _status(conn: asyncpg.Connection, pid: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM health_status WHERE person_id = $1", pid)


async def _fever_watch(conn: asyncpg.Connection, pid: str) -> None:
    now = datetime.now(UTC) - timedelta(minutes=10)
    record = HealthRecord(pid, HealthStatus.FEVER_WATCH, now, None, "fever at door", None, "gw")
    await set_health(conn, record, changed_by="gateway")


async def test_expiry_clears_in_store_and_history(
    campus: asyncpg.Connection, roster_listener
) -> None:
    now = datetime.now(UTC)
    await change_status(
        campus,
        "S1",
        HealthStatus.HOME_ISOLATION,
        by="ho",
        reason="r",
        until=now + timedelta(hours=1),
    )
    await change_status(
        campus, "S2", HealthStatus.CONFIRMED, by="ho", reason="r", until=now + timedelta(days=3)
    )
    await roster_listener.settle()
    assert await expire_statuses(campus, now + timedelta(minutes=30)) == []
    assert await expire_statuses(campus, now + timedelta(hours=2)) == ["S1"]
    assert "health_status" in await roster_listener.settle()  # doors hear of it
    row = await _status(campus, "S1")
    assert (row["status"], row["until"], row["caretaker_id"]) == ("clear", None, None)
    assert row["since"] == now + timedelta(hours=1)  # cleared as of its until
    last, changed_by, _ = (await health_history(campus, "S1"))[-1]
    assert (last.status, changed_by, last.set_by) == (HealthStatus.CLEAR, "expiry", "expiry")
    assert "home_isolation" in last.reason
    assert (await _status(campus, "S2"))["status"] == "confirmed"
    assert await expire_statuses(campus, now + timedelta(hours=2)) == []  # nothing twice


async def test_isolation_gets_a_caretaker_chosen_or_checked(campus: asyncpg.Connection) -> None:
    chosen = await change_status(campus, "S1", HealthStatus.SUSPECTED, by="ho", reason="r")
    assert chosen["caretaker_id"] == "T1"
    given = await change_status(
        campus, "S2", HealthStatus.HOME_ISOLATION, by="ho", reason="r", caretaker_id="T3"
    )
    assert given["caretaker_id"] == "T3"  # any active staff may be chosen by hand
    watch = await change_status(campus, "S3", HealthStatus.FEVER_WATCH, by="ho", reason="r")
    assert watch["caretaker_id"] is None  # not an isolation status
    for caretaker, message in (
        ("S4", "not staff"),
        ("T4", "not active"),
        ("ghost", "no person"),
        ("S1", "own caretaker"),
    ):
        with pytest.raises(InvalidReferenceError, match=message):
            await change_status(
                campus, "S1", HealthStatus.CONFIRMED, by="ho", reason="r", caretaker_id=caretaker
            )
    with pytest.raises(InvalidReferenceError, match="future"):
        await change_status(
            campus,
            "S1",
            HealthStatus.CONFIRMED,
            by="ho",
            reason="r",
            until=datetime.now(UTC) - timedelta(seconds=1),
        )
    assert (await _status(campus, "S1"))["status"] == "suspected"  # refusals change nothing


async def test_reading_flags_fever_and_needs_fever_watch(campus: asyncpg.Connection) -> None:
    with pytest.raises(StatusConflict):
        await record_reading(campus, "S1", 36.5, by="guard", threshold_c=37.3)
    await _fever_watch(campus, "S1")
    low = await record_reading(campus, "S1", 36.6, by="guard", threshold_c=37.3, note="ear")
    high = await record_reading(campus, "S1", 37.3, by="guard", threshold_c=37.3)
    assert (low["fever"], high["fever"]) == (False, True)
    assert (low["celsius"], low["recorded_by"], low["note"]) == (36.6, "guard", "ear")
    with pytest.raises(InvalidReferenceError, match="future"):
        await record_reading(
            campus,
            "S1",
            36.6,
            by="guard",
            threshold_c=37.3,
            measured_at=datetime.now(UTC) + timedelta(hours=1),
        )
    assert (await _status(campus, "S1"))["status"] == "fever_watch"  # a reading decides nothing


async def test_review_clears_or_escalates_once(campus: asyncpg.Connection) -> None:
    await _fever_watch(campus, "S1")
    await _fever_watch(campus, "S2")
    with pytest.raises(StatusConflict, match="no re-measurement"):
        await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="looks fine")
    await record_reading(campus, "S1", 37.6, by="guard", threshold_c=37.3)
    with pytest.raises(StatusConflict, match="is a fever"):
        await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="37.6 C")
    await record_reading(campus, "S1", 36.6, by="guard", threshold_c=37.3)
    cleared = await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="36.6 C")
    assert (cleared["status"], cleared["caretaker_id"]) == ("clear", None)
    escalated = await resolve_fever_watch(
        campus,
        "S2",
        escalate=True,
        by="ho",
        reason="38.2 C twice",
        until=datetime.now(UTC) + timedelta(days=14),
    )
    assert (escalated["status"], escalated["caretaker_id"]) == ("suspected", "T1")
    with pytest.raises(StatusConflict, match="suspected"):
        await resolve_fever_watch(campus, "S2", escalate=False, by="ho2", reason="late click")
    history = [(r.status.value, by) for r, by, _ in await health_history(campus, "S2")]
    assert history == [("fever_watch", "gateway"), ("suspected", "ho")]
    audit = await campus.fetchval(
        "SELECT count(*) FROM audit_log WHERE entity = 'health_status' AND operator = 'ho'"
    )
    assert audit == 2


async def test_clearing_sees_a_fever_reading_recorded_meanwhile(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    """A guard's fever re-measurement committed while an officer clears must stop the clear:
    the review reads the latest reading under the person's lock, not before it."""
    await _fever_watch(campus, "S1")
    await record_reading(campus, "S1", 36.6, by="guard", threshold_c=37.3)
    guard = await connect(fresh_db)
    try:
        in_flight = guard.transaction()
        await in_flight.start()
        await record_reading(guard, "S1", 38.2, by="guard", threshold_c=37.3)
        clearing = asyncio.create_task(
            resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="36.6 C")
        )
        await asyncio.sleep(0.3)
        await in_flight.commit()
        with pytest.raises(StatusConflict, match="is a fever"):
            await clearing
    finally:
        await guard.close()
    assert (await _status(campus, "S1"))["status"] == "fever_watch"


@pytest.mark.parametrize("lift", [HealthStatus.CLEAR, HealthStatus.RECOVERED])
async def test_any_change_lifting_fever_watch_needs_a_normal_re_measurement(
    campus: asyncpg.Connection, lift: HealthStatus
) -> None:
    """Not only the fever review: a plain status change (PUT, /clear) checks the reading too."""
    await _fever_watch(campus, "S1")
    with pytest.raises(StatusConflict, match="no re-measurement since the fever"):
        await change_status(campus, "S1", lift, by="ho", reason="looks fine")
    await record_reading(campus, "S1", 37.9, by="guard", threshold_c=37.3)
    with pytest.raises(StatusConflict, match=r"\(37.9 C\) is a fever"):
        await change_status(campus, "S1", lift, by="ho", reason="37.9")
    assert (await _status(campus, "S1"))["status"] == "fever_watch"
    await record_reading(campus, "S1", 36.5, by="guard", threshold_c=37.3)
    assert (await change_status(campus, "S1", lift, by="ho", reason="36.5"))["status"] == lift


async def test_escalating_or_an_ended_watch_needs_no_reading(campus: asyncpg.Connection) -> None:
    await _fever_watch(campus, "S1")
    changed = await change_status(campus, "S1", HealthStatus.CONFIRMED, by="ho", reason="PCR+")
    assert changed["status"] == "confirmed"
    now = datetime.now(UTC)
    ended = HealthRecord(
        "S2", HealthStatus.FEVER_WATCH, now - timedelta(hours=2), now - timedelta(minutes=1)
    )
    await set_health(campus, ended, changed_by="ho")
    assert (await change_status(campus, "S2", HealthStatus.CLEAR, by="ho", reason="r"))[
        "status"
    ] == "clear"
