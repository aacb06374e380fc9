from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from gateway.domain.health import HealthStatus
from gateway.services.health import change_status
from gateway.services.travel import (
    DuplicateAreaError,
    TravelRules,
    Trip,
    add_area,
    change_area,
    declare,
    evaluate,
    remove_area,
    waive_declaration,
)
from gateway.services.travel_import import TravelImportError, import_declarations
from gateway.store.health import health_history

TZ = ZoneInfo("Asia/Shanghai")
RULES = TravelRules(isolation_days=14, tz=TZ)
TODAY = datetime.now(TZ).date()


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=TZ)


async def _status(conn: asyncpg.Connection, pid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM health_status WHERE person_id = $1", pid)


async def _area(conn: asyncpg.Connection, name: str, first: int = -30, last: int | None = None):
    values = {
        "name": name,
        "match": name,
        "effective_from": day(first),
        "effective_until": None if last is None else day(last),
    }
    area, _ = await add_area(conn, values, RULES, by="ho")
    return area


async def test_return_from_listed_area_isolates_with_caretaker(campus: asyncpg.Connection) -> None:
    await _area(campus, "Wuhan")
    ids, result = await declare(
        campus, [Trip("S1", "wuhan, Hubei", day(-5), day(-2))], RULES, by="liaison"
    )
    assert result.isolated == ["S1"]
    row = await _status(campus, "S1")
    assert (row["status"], row["caretaker_id"], row["set_by"]) == ("home_isolation", "T1", "travel")
    assert row["until"] == start(day(12))  # return date + 14 days, campus midnight
    assert f"#{ids[0]}" in row["reason"] and "Wuhan" in row["reason"]
    # declaring the same trip again changes nothing
    again, result = await declare(
        campus, [Trip("S1", "wuhan, Hubei", day(-5), day(-2))], RULES, by="liaison"
    )
    assert again == ids and result.isolated == result.extended == []
    assert len(await health_history(campus, "S1")) == 1


async def test_trips_elsewhere_or_outside_the_listing_do_not_isolate(
    campus: asyncpg.Connection,
) -> None:
    await _area(campus, "Wuhan", first=-30, last=-20)  # delisted before the trip
    await _area(campus, "Harbin", first=-1)  # listed after the trip
    _, result = await declare(
        campus,
        [Trip("S1", "Wuhan", day(-10), day(-5)), Trip("S2", "Harbin", day(-10), day(-3))],
        RULES,
        by="ho",
    )
    assert result.isolated == [] and await _status(campus, "S1") is None
    _, result = await declare(campus, [Trip("S3", "Beijing", day(-3), day(-1))], RULES, by="ho")
    assert result.isolated == []
    # listed during the trip (not on the return date): isolates
    _, result = await declare(campus, [Trip("S4", "Harbin", day(-4), day(-1))], RULES, by="ho")
    assert result.isolated == ["S4"]


async def test_declared_ahead_isolates_when_the_return_date_comes(
    campus: asyncpg.Connection,
) -> None:
    await _area(campus, "Wuhan")
    _, result = await declare(campus, [Trip("S1", "Wuhan", day(-1), day(2))], RULES, by="ho")
    assert result.isolated == [] and await _status(campus, "S1") is None
    result = await evaluate(campus, RULES, by="travel", now=start(day(2)) - timedelta(seconds=1))
    assert result.isolated == []
    result = await evaluate(campus, RULES, by="travel", now=start(day(2)) + timedelta(minutes=1))
    assert result.isolated == ["S1"]
    assert (await _status(campus, "S1"))["until"] == start(day(16))


async def test_area_changes_isolate_and_lift_but_never_touch_officer_statuses(
    campus: asyncpg.Connection,
) -> None:
    trips = [
        Trip("S1", "Wuhan", day(-6), day(-3)),
        Trip("S2", "Wuhan", day(-6), day(-3)),
        Trip("S3", "Wuhan", day(-40), day(-30)),  # closed: its isolation ended long ago
    ]
    await declare(campus, trips, RULES, by="ho")
    await change_status(campus, "S2", HealthStatus.SUSPECTED, by="ho", reason="cough")
    area, result = await add_area(
        campus,
        {"name": "Wuhan", "match": "wuhan", "effective_from": day(-90), "effective_until": None},
        RULES,
        by="ho",
    )
    assert (result.isolated, result.waiting) == (["S1"], ["S2"])
    assert (await _status(campus, "S2"))["status"] == "suspected"
    assert await _status(campus, "S3") is None
    # narrowing the area to before the trip lifts the isolation it caused
    _, result = await change_area(campus, area["id"], {"effective_until": day(-50)}, RULES, by="ho")
    assert result.lifted == ["S1"]
    row = await _status(campus, "S1")
    assert row["status"] == "clear" and "Wuhan" in row["reason"] and "lifted" in row["reason"]
    _, result = await change_area(campus, area["id"], {"effective_until": None}, RULES, by="ho")
    assert result.isolated == ["S1"]  # listed again: isolates again
    result = await remove_area(campus, area["id"], RULES, by="admin")
    assert result.lifted == ["S1"]
    assert (await _status(campus, "S2"))["status"] == "suspected"  # never lifted by travel
    last, changed_by, _ = (await health_history(campus, "S1"))[-1]
    assert (last.status, changed_by) == (HealthStatus.CLEAR, "admin")
    audit = await campus.fetch(
        "SELECT operator, action FROM audit_log WHERE entity = 'epidemic_area' ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("ho", "create"),
        ("ho", "update"),
        ("ho", "update"),
        ("admin", "delete"),
    ]


async def test_officer_decisions_stand(campus: asyncpg.Connection) -> None:
    await _area(campus, "Wuhan")
    ids, _ = await declare(campus, [Trip("S1", "Wuhan", day(-6), day(-3))], RULES, by="ho")
    await change_status(campus, "S1", HealthStatus.CLEAR, by="ho", reason="negative test")
    result = await evaluate(campus, RULES, by="travel")
    assert result.isolated == [] and (await _status(campus, "S1"))["status"] == "clear"
    # an officer's home_isolation too short for the trip is lengthened to the trip's end
    await change_status(
        campus,
        "S2",
        HealthStatus.HOME_ISOLATION,
        by="ho",
        reason="r",
        until=start(day(3)),
        caretaker_id="T2",
    )
    _, result = await declare(campus, [Trip("S2", "Wuhan", day(-6), day(-3))], RULES, by="ho")
    row = await _status(campus, "S2")
    assert result.extended == ["S2"]
    assert (row["until"], row["caretaker_id"]) == (start(day(11)), "T2")
    # a waived trip lifts the isolation it caused
    (s3,), _ = await declare(campus, [Trip("S3", "Wuhan", day(-2), day(-1))], RULES, by="ho")
    after, result = await waive_declaration(campus, s3, RULES, by="ho")
    assert result.lifted == ["S3"] and after["waived_by"] == "ho"
    assert "waived" in (await _status(campus, "S3"))["reason"]
    assert ids


async def test_csv_import_checks_the_whole_file(campus: asyncpg.Connection, tmp_path) -> None:
    await _area(campus, "Wuhan")
    header = "person_id,destination,departure_date,return_date,note\n"
    good = f"S1,Wuhan,{day(-5)},{day(-1)},form 12\nS4,Shanghai,{day(-5)},{day(-1)},\n"
    cases = {
        "nope\n": "row 1: header must be",
        header: "no declarations",
        header + good + f"S9,Wuhan,{day(-5)},{day(-1)},\n": "row 4: unknown person 'S9'",
        header + good + "S2,Wuhan,2026-13-01,2026-01-02,\n": "row 4 (S2): departure_date",
        header + f"S2,Wuhan,{day(-1)},{day(-5)},\n": "row 2 (S2): return_date",
        header + "S2,,2026-01-01,2026-01-02,\n": "row 2 (S2): destination is empty",
        header + "S2,Wuhan,2026-01-01\n": "row 2 (S2): expected 5 fields",
    }
    for text, message in cases.items():
        with pytest.raises(TravelImportError, match=re.escape(message)) as info:
            await import_declarations(campus, text, "trips.csv", RULES, by="ho")
        assert str(info.value).startswith("trips.csv: ") and "\n" not in str(info.value)
    assert await campus.fetchval("SELECT count(*) FROM travel_declarations") == 0
    # a liaison's file may only name people of their org unit
    with pytest.raises(TravelImportError, match="row 3: person 'S4' is outside"):
        await import_declarations(campus, header + good, "t.csv", RULES, by="l", org_scope="cs")
    rows, ids, result = await import_declarations(
        campus, "\ufeff" + header + good, "trips.csv", RULES, by="ho"
    )
    assert (rows, len(ids), result.isolated) == (2, 2, ["S1"])
    _, again, _ = await import_declarations(campus, header + good, "trips.csv", RULES, by="ho")
    assert again == ids
    source = await campus.fetchval("SELECT DISTINCT source FROM travel_declarations")
    assert source == "csv"


async def test_lengthened_officer_isolation_is_not_lifted_by_travel(
    campus: asyncpg.Connection,
) -> None:
    """An officer's home_isolation that travel lengthened stays the officer's: delisting the
    area must not clear it (travel never lifts what an officer set)."""
    area = await _area(campus, "Wuhan")
    await change_status(
        campus,
        "S2",
        HealthStatus.HOME_ISOLATION,
        by="ho",
        reason="contact at home",
        until=start(day(3)),
        caretaker_id="T2",
    )
    _, result = await declare(campus, [Trip("S2", "Wuhan", day(-6), day(-3))], RULES, by="ho")
    assert result.extended == ["S2"]
    result = await remove_area(campus, area["id"], RULES, by="ho")
    row = await _status(campus, "S2")
    assert result.lifted == []
    assert (row["status"], row["set_by"]) == ("home_isolation", "ho")
    assert row["until"] >= start(day(3))


async def test_an_area_cannot_be_renamed_or_moved_onto_another_listing(
    campus: asyncpg.Connection,
) -> None:
    first = await _area(campus, "Wuhan", first=-30, last=-20)
    other = await _area(campus, "Xian", first=-25)
    with pytest.raises(DuplicateAreaError):
        await change_area(campus, other["id"], {"name": "wuhan"}, RULES, by="ho")
    with pytest.raises(DuplicateAreaError):
        await change_area(campus, first["id"], {"name": "Xian"}, RULES, by="ho")
    # An area's own dates may move; once the periods are apart, the name may be shared.
    moved, _ = await change_area(campus, first["id"], {"effective_until": day(-26)}, RULES, by="ho")
    assert moved["effective_until"] == day(-26)
    renamed, _ = await change_area(campus, other["id"], {"name": "Wuhan"}, RULES, by="ho")
    assert renamed["name"] == "Wuhan"
