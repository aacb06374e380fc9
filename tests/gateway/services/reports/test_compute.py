"""Every number and list of a report checked against the events and changes inserted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg
import pytest

from firmware_sim.campus import Campus, SimPerson
from gateway.domain.reports import Audience
from gateway.services.reports import generate_reports
from gateway.services.reports.compute import UnknownOrgUnitError, day_window
from gateway.services.reports.render_csv import render_csv
from gateway.services.reports.render_html import render_html
from gateway.settings import Settings
from gateway.store import reports as store

from .conftest import TZ, Log, at, set_status, students_of, today


@dataclass
class Scenario:
    conn: asyncpg.Connection
    campus: Campus
    college: str
    s: list[SimPerson]
    o: SimPerson
    t1: SimPerson
    day: date
    settings: Settings


@pytest.fixture
async def scenario(campus_conn, small_campus, tmp_path):
    """One campus day of a college's students and staff, another college, and outsiders."""
    conn, facts = campus_conn, small_campus.facts
    college = facts.lab_college  # "cs"
    other = next(p.college for p in facts.people if p.kind == "student" and p.college != college)
    s = students_of(small_campus, college)
    o = students_of(small_campus, other)[0]
    t1 = next(p for p in facts.people if p.kind == "staff" and p.college == college and p.active)
    day = today()
    log = Log(conn, facts.door_zones)
    gate, dorm = facts.gate_door, facts.temperature_door
    # s0: in with a reading, out later; s1: in; s2: fever; s3: two not_authorized; s4: no reading.
    await log.card(at(day, 10), dorm, "admit", "ok", person=s[0].id, celsius=36.5)
    await log.card(
        at(day, 20), facts.gate_exit_door, "admit", "ok", person=s[0].id, direction="out"
    )
    await log.card(at(day, 30), gate, "admit", "ok", person=s[1].id)
    await log.card(at(day, 40), dorm, "deny", "fever", person=s[2].id, celsius=38.2)
    await log.card(at(day, 50), facts.lab_door, "deny", "not_authorized", person=s[3].id)
    await log.card(at(day, 51), facts.lab_door, "deny", "not_authorized", person=s[3].id)
    await log.card(at(day, 60), dorm, "deny", "temperature_required", person=s[4].id)
    # Another college's student and the staff member.
    await log.card(at(day, 70), gate, "admit", "ok", person=o.id)
    await log.card(at(day, 71), dorm, "deny", "health_hold", person=o.id, celsius=36.6)
    await log.card(at(day, 80), facts.office_door, "admit", "ok", person=t1.id, celsius=36.7)
    # Outsiders: three at the gate, one at the dormitory.
    for n in range(3):
        await log.card(at(day, 90 + n), gate, "deny", "unknown_card", card=f"0A0B0C{n:02X}")
    await log.card(at(day, 95), dorm, "deny", "unknown_card", card="0A0B0CFF")
    # The day before: s0 came in, s1 had a fever.
    await log.card(at(day - timedelta(days=1), 100), gate, "admit", "ok", person=s[0].id)
    await log.card(
        at(day - timedelta(days=1), 110), dorm, "deny", "fever", person=s[1].id, celsius=37.9
    )
    # Health changes today.
    await set_status(conn, s[2].id, "fever_watch")
    await set_status(conn, s[5].id, "close_contact", caretaker=t1.id)
    await set_status(conn, s[1].id, "home_isolation", caretaker=t1.id)
    await set_status(conn, s[1].id, "confirmed", caretaker=t1.id)
    await set_status(conn, s[0].id, "fever_watch")
    await set_status(conn, s[0].id, "clear")
    await set_status(conn, s[6].id, "home_isolation", caretaker=t1.id)
    await set_status(conn, s[6].id, "home_isolation", caretaker=t1.id, reason="extended")
    return Scenario(conn, small_campus, college, s, o, t1, day, Settings(data_dir=tmp_path))


def _unpack(w: Scenario):
    return w.conn, w.campus, w.college, w.s, w.t1, w.day, w.settings


def _iso_of(campus, college):
    """Students of the college the import put in home isolation (today)."""
    return [p for p in campus.facts.people if p.isolated and p.college == college]


async def test_college_student_report_counts_exactly(scenario):
    conn, campus, college, s, t1, day, settings = _unpack(scenario)
    _, end = day_window(day, TZ)
    [report] = await generate_reports(
        conn, day=day, settings=settings, by="test", org_units=[college],
        audiences=[Audience.STUDENT], now=end,
    )  # fmt: skip
    summary, lists = report.summary, report.lists
    students = [
        p for p in campus.facts.people if p.kind == "student" and p.college == college and p.active
    ]
    isolated = _iso_of(campus, college)
    assert summary["org_unit"] == {"id": college, "name": "School of Computer Science"}
    assert summary["complete"] is True
    assert summary["people"] == len(students)
    assert summary["present"] == 2
    assert summary["absent"] == len(students) - 2
    assert summary["screenings"] == 2  # s0's reading and s2's fever reading
    assert summary["fevers"] == 1 and summary["fever_readings"] == 1
    assert summary["denied"] == {"fever": 1, "not_authorized": 2, "temperature_required": 1}
    assert summary["denied_total"] == 4
    expected_health = {
        "clear": len(students) - len(isolated) - 4,
        "fever_watch": 1,
        "home_isolation": len(isolated) + 1,
        "close_contact": 1,
        "suspected": 0,
        "confirmed": 1,
        "recovered": 0,
    }
    assert summary["health"] == expected_health
    # Imported isolations, s5 close contact, s1 home isolation then confirmed, s6 once
    # (its second change keeps the status); s0's fever watch is not an isolation.
    assert summary["new_isolations"] == len(isolated) + 4
    changes = [(c["person_id"], c["status"], c["previous"]) for c in lists["new_isolations"]]
    assert (s[1].id, "home_isolation", "clear") in changes
    assert (s[1].id, "confirmed", "home_isolation") in changes
    assert (s[5].id, "close_contact", "clear") in changes
    assert [c for c in changes if c[0] == s[6].id] == [(s[6].id, "home_isolation", "clear")]
    assert summary["outsiders_blocked"] == {
        "scope": "campus",
        "total": 4,
        "by_door": {campus.facts.gate_door: 3, campus.facts.temperature_door: 1},
    }
    # Lists behind the numbers.
    [fever] = lists["fevers"]
    assert (fever["person_id"], fever["celsius"], fever["door_id"]) == (
        s[2].id, 38.2, campus.facts.temperature_door,
    )  # fmt: skip
    assert fever["at"] == at(day, 40).isoformat()
    by_person = {row["person_id"]: row for row in lists["health"]}
    assert by_person[s[5].id]["status"] == "close_contact"
    assert by_person[s[5].id]["caretaker_id"] == t1.id
    assert by_person[s[5].id]["caretaker_name"]
    assert s[0].id not in by_person  # cleared again
    assert len(lists["health"]) == sum(v for k, v in expected_health.items() if k != "clear")
    absent_ids = {row["person_id"] for row in lists["absent"]}
    assert len(absent_ids) == summary["absent"]
    assert s[0].id not in absent_ids and s[1].id not in absent_ids and s[2].id in absent_ids
    # Trend: the day before s0 was present and s1 had a fever.
    assert summary["trend"][-1] == {"day": day.isoformat(), "present": 2, "fevers": 1}
    yesterday = (day - timedelta(days=1)).isoformat()
    assert summary["trend"][-2] == {"day": yesterday, "present": 1, "fevers": 1}
    assert len(summary["trend"]) == 7


async def test_staff_campus_and_subunit_reports(scenario):
    conn, campus, college, s, _t1, day, settings = _unpack(scenario)
    _, end = day_window(day, TZ)
    reports = await generate_reports(conn, day=day, settings=settings, by="test", now=end)
    # Default: the campus roll-up and every unit under the university, both audiences.
    units = {r.org_unit_id for r in reports}
    assert None in units and college in units and "student-affairs" in units
    assert "univ" not in units and len(reports) == 2 * len(units)
    staff = next(r for r in reports if r.org_unit_id == college and r.audience == "staff")
    assert (staff.summary["present"], staff.summary["screenings"]) == (1, 1)
    assert staff.summary["denied_total"] == 0
    campus_students = next(r for r in reports if r.org_unit_id is None and r.audience == "student")
    assert campus_students.summary["present"] == 3  # s0, s1 and the other college's student
    assert campus_students.summary["denied"] == {
        "fever": 1, "health_hold": 1, "not_authorized": 2, "temperature_required": 1,
    }  # fmt: skip
    assert campus_students.summary["screenings"] == 3
    # A class (below a department) on demand: only its own students.
    klass = s[0].org_unit
    [one] = await generate_reports(
        conn, day=day, settings=settings, by="test", org_units=[klass],
        audiences=[Audience.STUDENT], now=end,
    )  # fmt: skip
    members = [p for p in campus.facts.people if p.org_unit == klass and p.active]
    assert one.summary["people"] == len(members)
    assert one.summary["present"] == sum(1 for p in s[:2] if p.org_unit == klass)


async def test_status_is_as_of_the_end_of_the_day(scenario):
    """Yesterday's report knows nothing of today's health changes."""
    conn, _campus, college, _s, _t1, day, settings = _unpack(scenario)
    yesterday = day - timedelta(days=1)
    [report] = await generate_reports(
        conn, day=yesterday, settings=settings, by="test", org_units=[college],
        audiences=[Audience.STUDENT],
    )  # fmt: skip
    assert report.summary["health"]["clear"] == report.summary["people"]
    assert report.summary["new_isolations"] == 0
    assert report.summary["present"] == 1 and report.summary["fevers"] == 1
    assert report.summary["outsiders_blocked"]["total"] == 0


async def test_today_so_far_and_bad_input(scenario):
    conn, _campus, college, _s, _t1, day, settings = _unpack(scenario)
    [report] = await generate_reports(
        conn, day=day, settings=settings, by="test", org_units=[college],
        audiences=[Audience.STUDENT],
    )  # fmt: skip
    assert report.summary["complete"] is False
    with pytest.raises(UnknownOrgUnitError, match="nowhere"):
        await generate_reports(conn, day=day, settings=settings, by="t", org_units=["nowhere"])
    with pytest.raises(ValueError, match="not begun"):
        await generate_reports(conn, day=day + timedelta(days=2), settings=settings, by="t")
    stored = await store.get_report(conn, report.id)
    assert stored == report
    # What is stored renders exactly as what was generated (jsonb keeps no key order).
    for with_health in (True, False):
        assert render_html(stored, with_health=with_health) == render_html(
            report, with_health=with_health
        )
        assert render_csv(stored, with_health=with_health) == render_csv(
            report, with_health=with_health
        )
