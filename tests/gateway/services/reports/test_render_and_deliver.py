"""Rendering (CSV, XLSX, HTML with charts) and delivery (aiosmtpd, a local webhook server)."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook

from gateway.domain.reports import Audience, DailyReport
from gateway.domain.spreadsheet import FORMULA_STARTS
from gateway.domain.spreadsheet import safe_value as safe_cell
from gateway.services.reports import generate_reports, send_report
from gateway.services.reports.render_csv import render_csv
from gateway.services.reports.render_html import render_html
from gateway.services.reports.render_xlsx import render_xlsx
from gateway.services.reports.schedule import run_daily_reports
from gateway.settings import Settings
from gateway.store import reports as store

from .conftest import TZ, Log, at, students_of, today


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_report() -> DailyReport:
    """A report whose names try to break out of the HTML."""
    summary = {
        "day": "2026-11-27",
        "timezone": "Asia/Shanghai",
        "org_unit": {"id": "cs", "name": "Computer <Science> & Co"},
        "audience": "student",
        "cutoff": "2026-11-28T00:00:00+08:00",
        "complete": True,
        "people": 10,
        "present": 7,
        "absent": 3,
        "screenings": 6,
        "fevers": 1,
        "fever_readings": 1,
        "health": {"clear": 8, "fever_watch": 1, "home_isolation": 1, "close_contact": 0,
                   "suspected": 0, "confirmed": 0, "recovered": 0},
        "new_isolations": 1,
        "denied": {"fever": 1, "not_authorized": 2},
        "denied_total": 3,
        "outsiders_blocked": {"scope": "campus", "total": 2, "by_door": {"gate-main-in": 2}},
        "trend": [{"day": f"2026-11-{d}", "present": d % 7, "fevers": d % 2} for d in range(21, 28)],
    }  # fmt: skip
    person = {"person_id": "S1", "name": "<script>alert(1)</script>李华", "org_unit_id": "cs-1"}
    lists = {
        "fevers": [{**person, "at": "2026-11-27T08:00:00+08:00", "celsius": 38.1, "door_id": "d"}],
        "health": [{**person, "status": "fever_watch", "since": "2026-11-27T08:00:00+08:00",
                    "until": None, "reason": "fever", "caretaker_id": None,
                    "caretaker_name": None}],
        "new_isolations": [{"person_id": "S2", "name": "Wang", "org_unit_id": "cs-1",
                            "status": "home_isolation", "previous": "clear",
                            "since": "2026-11-27T09:00:00+08:00", "until": None,
                            "reason": "trip", "caretaker_id": "T1", "caretaker_name": "Zhang",
                            "changed_at": "2026-11-27T09:00:00+08:00", "changed_by": "ho"}],
        "absent": [{"person_id": f"S{n}", "name": f"P{n}", "org_unit_id": "cs-1"} for n in (3, 4, 5)],
    }  # fmt: skip
    when = datetime(2026, 11, 28, 0, 5, tzinfo=UTC)
    return DailyReport(
        1, date(2026, 11, 27), "cs", Audience.STUDENT, when, "test", False, when, summary, lists
    )


def test_csv_has_the_numbers_and_only_allowed_lists():
    report = sample_report()
    full = render_csv(report, with_health=True).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(full)))
    values = {r[0]: r[1] for r in rows if len(r) == 2}
    assert values["人数 / People"] == "10"
    assert values["在校 (有通行记录) / Present on campus"] == "7"
    assert values["拒绝 / Denied: 无权限 / not authorized"] == "2"
    assert values["拦截外来人员 (全校) / Outsiders blocked (campus-wide)"] == "2"
    assert ["发热人员 / Fevers (1)"] in rows and ["未到校名单 / Absent (3)"] in rows
    assert any(r[:1] == ["S2"] and "Zhang" in r for r in rows)
    plain = render_csv(report, with_health=False).decode("utf-8-sig")
    assert "Fevers (" not in plain and "S2" not in plain and "未到校名单 / Absent (3)" in plain


def test_xlsx_has_a_summary_sheet_and_one_sheet_per_list():
    report = sample_report()
    book = load_workbook(io.BytesIO(render_xlsx(report, with_health=True)))
    assert book.sheetnames == [
        "Summary 汇总", "Trend 趋势", "Fevers 发热人员", "Health statuses 健康状态名单",
        "New isolations 新增隔离", "Absent 未到校名单",
    ]  # fmt: skip
    summary = {r[0]: r[1] for r in book["Summary 汇总"].iter_rows(values_only=True) if r[0]}
    assert summary["人数 / People"] == 10 and summary["发热人数 / People with a fever"] == 1
    fevers = list(book["Fevers 发热人员"].iter_rows(values_only=True))
    assert fevers[1][:2] == ("S1", "<script>alert(1)</script>李华") and fevers[1][4] == 38.1
    assert len(list(book["Absent 未到校名单"].iter_rows())) == 4
    plain = load_workbook(io.BytesIO(render_xlsx(report, with_health=False)))
    assert plain.sheetnames == ["Summary 汇总", "Trend 趋势", "Absent 未到校名单"]


def test_html_escapes_data_has_charts_and_renders_identically():
    report = sample_report()
    page = render_html(report, with_health=True)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;李华" in page
    assert "Computer &lt;Science&gt; &amp; Co" in page
    assert page.count("<svg") == 3 and "Denied by reason" in page and "Last 7 days" in page
    # Charts speak both languages like the rest of the report: titles and reason codes.
    assert "按原因拒绝 / Denied by reason" in page and "近 7 天 / Last 7 days" in page
    assert "无权限 / not authorized" in page and ">not_authorized<" not in page
    assert 'id="list-fevers"' in page and 'id="list-absent"' in page
    assert render_html(report, with_health=True) == page  # re-rendered byte for byte
    plain = render_html(report, with_health=False)
    assert 'id="list-fevers"' not in plain and "S1" not in plain and 'id="list-absent"' in plain


# ---- delivery ------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", inbox
    finally:
        controller.stop()


class _Hooks:
    def __init__(self, port: int) -> None:
        self.bodies: list[dict] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hooks.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _one_day(campus_conn, small_campus) -> date:
    facts = small_campus.facts
    s = students_of(small_campus, facts.lab_college)
    log = Log(campus_conn, facts.door_zones)
    day = today() - timedelta(days=1)
    await log.card(at(day, 10), facts.gate_door, "admit", "ok", person=s[0].id)
    await log.card(
        at(day, 20), facts.temperature_door, "deny", "fever", person=s[1].id, celsius=38.0
    )
    return day


async def test_email_and_webhook_delivery_recorded_and_failed_ones_retried(
    campus_conn, small_campus, smtp, tmp_path
):
    smtp_url, inbox = smtp
    hook_port = free_port()
    recipients = {
        "student": ["mailto:student-affairs@campus.example", f"http://127.0.0.1:{hook_port}/hook"],
        "staff": ["mailto:school-office@campus.example"],
    }
    settings = Settings(
        data_dir=tmp_path, smtp_url=smtp_url, report_recipients=json.dumps(recipients)
    )
    day = await _one_day(campus_conn, small_campus)
    college = small_campus.facts.lab_college
    # The webhook server is not up yet: that delivery fails, is recorded, the report stays.
    reports = await generate_reports(
        campus_conn, day=day, settings=settings, by="test", org_units=[college], send=True
    )
    student = next(r for r in reports if r.audience == "student")
    deliveries = await store.deliveries_of(campus_conn, [r.id for r in reports])
    outcome = {(d.report_id, d.recipient): (d.status, d.error) for d in deliveries}
    assert outcome[(student.id, "mailto:student-affairs@campus.example")] == ("ok", None)
    status, error = outcome[(student.id, f"http://127.0.0.1:{hook_port}/hook")]
    assert status == "failed" and "ConnectError" in error
    assert len(deliveries) == 3
    # The e-mails: HTML body, CSV and XLSX attached, one per recipient and report.
    assert sorted(to for to, _ in inbox.messages) == [
        ["school-office@campus.example"], ["student-affairs@campus.example"],
    ]  # fmt: skip
    raw = next(body for to, body in inbox.messages if to == ["student-affairs@campus.example"])
    mail = message_from_bytes(raw, policy=policy.default)
    assert f"{day.isoformat()}" in mail["Subject"] and "Student daily report" in mail["Subject"]
    html = mail.get_body(("html",)).get_content()
    assert "<svg" in html and 'id="list-fevers"' in html
    attached = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    csv_name = f"campusgate-student-{college}-{day.isoformat()}.csv"
    assert set(attached) == {csv_name, csv_name.replace(".csv", ".xlsx")}
    book = load_workbook(io.BytesIO(attached[csv_name.replace(".csv", ".xlsx")]))
    summary = {r[0]: r[1] for r in book["Summary 汇总"].iter_rows(values_only=True) if r[0]}
    assert summary["在校 (有通行记录) / Present on campus"] == 1
    # The next scheduled run retries the failed webhook, now that it answers.
    hooks = _Hooks(hook_port)
    try:
        now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
        result = await run_daily_reports(campus_conn, settings, now + timedelta(hours=8))
        assert result["retried"] == 1
        [body] = [b for b in hooks.bodies if b["id"] == student.id]
        assert body["summary"]["present"] == 1 and body["summary"]["fevers"] == 1
        assert body["links"]["csv"].endswith(f"/api/daily-reports/{student.id}/csv")
        assert "lists" not in body  # no names leave by webhook
        # The same run generated yesterday's scheduled reports and sent them too.
        assert result["generated"] > 0
        scheduled = await store.list_reports(campus_conn, day=day, scheduled=True)
        assert len(scheduled) == result["generated"]
        assert (tmp_path / "reports" / day.isoformat()).is_dir()
        again = await run_daily_reports(campus_conn, settings, now + timedelta(hours=9))
        assert again == {"day": day.isoformat(), "generated": 0, "retried": 0}
    finally:
        hooks.close()
    latest = await store.deliveries_of(campus_conn, [student.id])
    assert [d.status for d in latest if "hook" in d.recipient] == ["failed", "ok"]
    # A resend goes to every recipient of the audience again.
    resent = await send_report(campus_conn, student.id, settings, by="officer")
    assert [d.status for d in resent] == ["ok", "failed"]  # the webhook server is gone again


async def test_email_without_smtp_server_is_a_recorded_failure(campus_conn, small_campus, tmp_path):
    settings = Settings(
        data_dir=tmp_path, report_recipients='{"staff": ["mailto:office@campus.example"]}'
    )
    day = await _one_day(campus_conn, small_campus)
    [report] = await generate_reports(
        campus_conn, day=day, settings=settings, by="t", org_units=[None],
        audiences=[Audience.STAFF], send=True,
    )  # fmt: skip
    [delivery] = await store.deliveries_of(campus_conn, [report.id])
    assert delivery.status == "failed" and "CAMPUSGATE_SMTP_URL" in delivery.error
    assert await store.get_report(campus_conn, report.id) is not None


def test_recipients_are_checked_at_start_up():
    from pydantic import ValidationError

    for bad, message in (
        ("[1]", "JSON object"),
        ('{"students": []}', "unknown audience"),
        ('{"staff": ["ftp://x"]}', "neither mailto"),
        ('{"staff": ["mailto:nobody"]}', "not mailto:name@domain"),
        ("{nope", "not JSON"),
    ):
        with pytest.raises(ValidationError, match=message):
            Settings(report_recipients=bad)


async def test_a_missed_run_is_caught_up_at_start_only_for_days_with_events(
    campus_conn, small_campus, tmp_path
):
    from gateway.services.reports.schedule import catch_up_daily_reports

    settings = Settings(data_dir=tmp_path)
    day = await _one_day(campus_conn, small_campus)
    due = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=TZ) + timedelta(
        hours=8
    )
    # The day before had no door events: nothing to make up (a fresh install stays quiet).
    quiet = await catch_up_daily_reports(campus_conn, settings, due - timedelta(days=1))
    assert quiet == {
        "day": (day - timedelta(days=1)).isoformat(),
        "skipped": "no door events that day",
    }
    made = await catch_up_daily_reports(campus_conn, settings, due)
    assert made["day"] == day.isoformat() and made["generated"] > 0
    scheduled = await store.list_reports(campus_conn, day=day, scheduled=True)
    assert len(scheduled) == made["generated"]
    assert all(r.cutoff == due - timedelta(hours=8) for r in scheduled)  # the whole day
    again = await catch_up_daily_reports(campus_conn, settings, due)
    assert again["generated"] == 0  # a restart later that day does not report twice


async def test_a_scheduled_run_makes_only_the_missing_audience(campus_conn, small_campus, tmp_path):
    settings = Settings(data_dir=tmp_path)
    day = await _one_day(campus_conn, small_campus)
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    # An earlier, interrupted run stored the campus student report only.
    await generate_reports(
        campus_conn, day=day, settings=settings, by="schedule", org_units=[None],
        audiences=[Audience.STUDENT], scheduled=True, now=now,
    )  # fmt: skip
    result = await run_daily_reports(campus_conn, settings, now + timedelta(hours=8))
    scheduled = await store.list_reports(campus_conn, day=day, scheduled=True, limit=1000)
    pairs = [(r.org_unit_id, r.audience) for r in scheduled]
    assert len(pairs) == len(set(pairs))  # nothing made twice
    assert (None, Audience.STAFF) in pairs
    assert result["generated"] == len(pairs) - 1


def test_no_cell_of_a_report_file_is_a_formula():
    """Names (and a unit's name) that a spreadsheet would run stay text in CSV and XLSX."""
    assert [safe_cell(v) for v in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "李华", "", 3, None)] == [
        "'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "李华", "", 3, None,
    ]  # fmt: skip
    report = sample_report()
    report.summary["org_unit"]["name"] = "-2+3"
    report.lists["absent"][0]["name"] = '=HYPERLINK("http://x","y")'
    report.lists["absent"][1]["name"] = "@SUM(A1:A9)"
    rows = list(csv.reader(io.StringIO(render_csv(report, with_health=False).decode("utf-8-sig"))))
    names = [r[1] for r in rows if r[:1] in (["S3"], ["S4"])]
    assert names == ['\'=HYPERLINK("http://x","y")', "'@SUM(A1:A9)"]
    assert not any(c.startswith(FORMULA_STARTS) for r in rows for c in r)
    book = load_workbook(io.BytesIO(render_xlsx(report, with_health=False)))
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not any(c.data_type == "f" for c in cells)
    assert book["Absent 未到校名单"]["B2"].value == '\'=HYPERLINK("http://x","y")'
    summary = {r[0]: r[1] for r in book["Summary 汇总"].iter_rows(values_only=True) if r[0]}
    assert summary["单位 / Org unit"] == "'-2+3 (cs)"


def test_a_report_stored_before_the_unit_numbers_renders_as_before():
    """No passages, never-screened or visitor sections for a report that has none."""
    report = sample_report()
    page = render_html(report, with_health=False)
    assert 'data-metric="passages"' not in page and 'id="list-never_screened"' not in page
    text = render_csv(report, with_health=False).decode("utf-8-sig")
    assert "Present, never screened (" not in text and "Passages" not in text
