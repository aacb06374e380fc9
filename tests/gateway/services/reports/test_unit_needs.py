"""What units need (issue 9, point 8): admitted passages, registered visitors refused at
dormitories and labs, people present but never screened; computed from real access-log
rows in PostgreSQL and rendered as CSV, XLSX and HTML."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest
from openpyxl import load_workbook

from firmware_sim.campus import Campus, SimPerson
from gateway.domain.reports import Audience, DailyReport
from gateway.services.reports import generate_reports
from gateway.services.reports.compute import day_window
from gateway.services.reports.render_csv import render_csv
from gateway.services.reports.render_html import render_html
from gateway.services.reports.render_xlsx import render_xlsx
from gateway.settings import Settings

from .conftest import TZ, Log, at, students_of, today

FORMULA_NAME = '=HYPERLINK("http://evil.example","x")'


@dataclass
class Day:
    conn: asyncpg.Connection
    campus: Campus
    college: str
    other: str
    s: list[SimPerson]
    o: SimPerson
    t1: SimPerson
    v: list[str]  # visitors: hosted by `college`, by `other`, by no unit
    day: date
    settings: Settings

    async def reports(self, unit: str | None, audience: Audience) -> DailyReport:
        _, end = day_window(self.day, TZ)
        [report] = await generate_reports(
            self.conn, day=self.day, settings=self.settings, by="test", org_units=[unit],
            audiences=[audience], now=end,
        )  # fmt: skip
        return report


@pytest.fixture
async def unit_day(campus_conn, small_campus, tmp_path) -> Day:
    conn, facts = campus_conn, small_campus.facts
    college = facts.lab_college
    other = next(p.college for p in facts.people if p.kind == "student" and p.college != college)
    s = students_of(small_campus, college)
    o = students_of(small_campus, other)[0]
    t1 = next(p for p in facts.people if p.kind == "staff" and p.college == college and p.active)
    visitors = sorted(p.id for p in facts.people if p.kind == "visitor")[:3]
    for visitor, host in zip(visitors, (college, other, None), strict=True):
        await conn.execute("UPDATE people SET org_unit_id = $2 WHERE id = $1", visitor, host)
    await conn.execute("UPDATE people SET name = $2 WHERE id = $1", s[1].id, FORMULA_NAME)
    kinds = facts.zone_kinds
    dorm, lab, gate = facts.temperature_door, facts.lab_door, facts.gate_door
    exit_, office = facts.gate_exit_door, facts.office_door
    assert [kinds[facts.door_zones[d]] for d in (dorm, lab, gate, exit_, office)] == [
        "dormitory", "lab", "gate", "gate", "office",
    ]  # fmt: skip
    day = today()
    log = Log(conn, facts.door_zones)
    v1, v2, v3 = visitors
    # (seconds, door, verdict, reason, person, celsius, direction); person None: unknown card.
    table = [
        (10, dorm, "admit", "ok", s[0].id, 36.5, "in"),  # s0 screened at the dorm door
        (20, exit_, "admit", "ok", s[0].id, None, "out"),
        (30, gate, "admit", "ok", s[1].id, None, "in"),  # s1 never screened
        (200, lab, "admit", "ok", s[1].id, None, "in"),
        (300, lab, "admit", "ok", s[1].id, None, "out"),
        (40, dorm, "deny", "fever", s[2].id, 38.2, "in"),  # s2 measured (a fever) ...
        (45, gate, "admit", "ok", s[2].id, None, "in"),  # ... so screened
        (50, dorm, "deny", "temperature_required", s[3].id, None, "in"),  # s3: not present
        (60, gate, "admit", "ok", o.id, None, "in"),  # another college: never screened
        (70, office, "admit", "ok", t1.id, None, "in"),  # staff, never screened
        (80, dorm, "deny", "not_authorized", v1, None, "in"),  # visitors ...
        (81, lab, "deny", "fever", v1, 38.4, "in"),
        (82, gate, "deny", "not_authorized", v1, None, "in"),  # at the gate: not counted
        (83, gate, "admit", "ok", v1, None, "in"),
        (84, lab, "deny", "not_authorized", v2, None, "in"),
        (85, dorm, "deny", "not_authorized", v3, None, "in"),
        (90, dorm, "deny", "unknown_card", None, None, "in"),  # an outsider
    ]
    for seconds, door, verdict, reason, person, celsius, direction in table:
        await log.card(
            at(day, seconds), door, verdict, reason, person=person, celsius=celsius,
            direction=direction, card="0A0B0C0D" if person is None else "04AABBCC",
        )  # fmt: skip
    return Day(
        conn, small_campus, college, other, s, o, t1, visitors, day, Settings(data_dir=tmp_path)
    )


def _kinds(**counts: tuple[int, int]) -> dict[str, dict[str, int]]:
    return {kind: {"in": i, "out": o} for kind, (i, o) in counts.items()}


async def test_the_three_numbers_per_unit_and_audience(unit_day: Day) -> None:
    w = unit_day
    s, o, t1 = w.s, w.o, w.t1
    v1, v2, v3 = w.v
    # unit, audience -> passages, never screened (ids), visitors refused (attempts, people,
    # by zone kind), outsiders and visitors.
    expected = [
        (w.college, Audience.STUDENT,
         {"total": 6, "in": 4, "out": 2,
          "by_zone_kind": _kinds(dormitory=(1, 0), lab=(1, 1), gate=(2, 1))},
         [s[1].id], (2, 1, {"dormitory": 1, "lab": 1}), 3),
        (w.college, Audience.STAFF,
         {"total": 1, "in": 1, "out": 0, "by_zone_kind": _kinds(office=(1, 0))},
         [t1.id], (2, 1, {"dormitory": 1, "lab": 1}), 3),
        (w.other, Audience.STUDENT,
         {"total": 1, "in": 1, "out": 0, "by_zone_kind": _kinds(gate=(1, 0))},
         [o.id], (1, 1, {"dormitory": 0, "lab": 1}), 2),
        (None, Audience.STUDENT,
         {"total": 7, "in": 5, "out": 2,
          "by_zone_kind": _kinds(dormitory=(1, 0), lab=(1, 1), gate=(3, 1))},
         sorted([s[1].id, o.id], key=lambda i: (_unit(w, i), i)),
         (4, 3, {"dormitory": 2, "lab": 2}), 5),
    ]  # fmt: skip
    for unit, audience, passages, unscreened, refused, together in expected:
        report = await w.reports(unit, audience)
        summary, lists = report.summary, report.lists
        where = (unit, audience.value)
        assert summary["passages"] == passages, where
        assert summary["never_screened"] == len(unscreened), where
        assert [r["person_id"] for r in lists["never_screened"]] == unscreened, where
        total, people, by_kind = refused
        assert summary["visitors_refused"] == {
            "scope": "campus" if unit is None else "org_unit",
            "total": total,
            "people": people,
            "by_zone_kind": by_kind,
        }, where
        assert summary["outsiders_blocked"]["total"] == 1, where
        assert summary["outsiders_and_visitors"] == together, where
    # The lists behind the numbers: who, where, when, why; first passage of the day.
    college = await w.reports(w.college, Audience.STUDENT)
    [row] = college.lists["never_screened"]
    assert row == {
        "person_id": s[1].id,
        "name": FORMULA_NAME,
        "org_unit_id": s[1].org_unit,
        "first_passage_at": at(w.day, 30).isoformat(),
        "first_passage_door": w.campus.facts.gate_door,
    }
    facts = w.campus.facts
    assert [
        (r["person_id"], r["org_unit_id"], r["at"], r["door_id"], r["zone_kind"], r["reason"])
        for r in college.lists["visitors_refused"]
    ] == [
        (v1, w.college, at(w.day, 80).isoformat(), facts.temperature_door, "dormitory",
         "not_authorized"),
        (v1, w.college, at(w.day, 81).isoformat(), facts.lab_door, "lab", "fever"),
    ]  # fmt: skip
    campus = await w.reports(None, Audience.STAFF)
    assert [r["person_id"] for r in campus.lists["visitors_refused"]] == [v1, v1, v2, v3]
    # A screened student and one who was never present are on neither list.
    assert s[0].id not in {r["person_id"] for r in campus.lists["never_screened"]}
    absent = {r["person_id"] for r in college.lists["absent"]}
    assert s[3].id in absent and s[2].id not in absent


def _unit(w: Day, person_id: str) -> str:
    return next(p.org_unit for p in w.campus.facts.people if p.id == person_id) or ""


async def test_formats_carry_the_new_sections(unit_day: Day) -> None:
    w = unit_day
    report = await w.reports(w.college, Audience.STUDENT)
    for with_health in (True, False):
        text = render_csv(report, with_health=with_health).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        values = {r[0]: r[1] for r in rows if len(r) == 2}
        assert (
            values["放行通行次数 (进、出各计一次) / Admitted passages (each in and each out)"]
            == "6"
        )
        assert values["放行 / Passages: 实验室 / lab, 出 / out"] == "1"
        assert values["在校但未测体温 / Present, never screened"] == "1"
        assert values["登记访客被拒 (宿舍、实验室) / Registered visitors refused (dormitories, labs)"] == "2"  # fmt: skip
        assert values["外来人员与访客被拒合计 / Outsiders and visitors refused, total"] == "3"
        assert ["在校未测体温名单 / Present, never screened (1)"] in rows
        assert [
            "被拒访客名单 (宿舍、实验室) / Visitors refused at dormitories and labs (2)"
        ] in rows
        assert ["宿舍 / dormitory", "1", "0"] in rows  # passages by zone kind
        # The name that is a formula stays text; no cell of the file starts a formula.
        # (Listed as never screened, and as not checked in: issue #15's list.)
        named = [r for r in rows if r[:1] == [w.s[1].id]]
        assert len(named) == 2 and all(r[1] == "'" + FORMULA_NAME for r in named)
        assert not any(c.startswith(("=", "+", "-", "@")) for r in rows for c in r)
        reasons = [r[-1] for r in rows if r[:1] == [w.v[0]]]
        assert reasons == (["not_authorized", "fever"] if with_health else ["not_authorized", "withheld"])  # fmt: skip

        book = load_workbook(io.BytesIO(render_xlsx(report, with_health=with_health)))
        assert "Passages 通行" in book.sheetnames
        assert "Present, never screened 在校未测体温名" in book.sheetnames
        visitors = book["Visitors refused at dormitories"]
        assert [r[0] for r in visitors.iter_rows(min_row=2, values_only=True)] == [w.v[0]] * 2
        sheet = book["Present, never screened 在校未测体温名"]
        cell = sheet["B2"]
        assert (cell.value, cell.data_type) == ("'" + FORMULA_NAME, "s")
        summary = {r[0]: r[1] for r in book["Summary 汇总"].iter_rows(values_only=True) if r[0]}
        assert summary["在校但未测体温 / Present, never screened"] == 1
        assert list(book["Passages 通行"].iter_rows(values_only=True))[1:] == [
            ("宿舍 / dormitory", 1, 0), ("实验室 / lab", 1, 1), ("校门 / gate", 2, 1),
        ]  # fmt: skip

        page = render_html(report, with_health=with_health)
        for key, value in (("passages", 6), ("never_screened", 1), ("visitors_refused", 2)):
            assert f'data-metric="{key}">' in page and f"<b>{value}</b>" in page
        assert 'id="list-never_screened"' in page and 'id="list-visitors_refused"' in page
        assert 'id="passages"' in page and 'id="visitors-refused"' in page
        assert page.count("<svg") == 4 and "Admitted passages by zone kind" in page
        assert "Present, never screened: people with an admitted passage" in page
        assert ("<td>withheld</td>" in page) is not with_health
