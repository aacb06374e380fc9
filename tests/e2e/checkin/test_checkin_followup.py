"""Liaisons' rate and missing list, reminders before the cut-off, the daily reports'
check-in numbers, retention and the person export (issue #15)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest
from checkin_campus import api

from gateway.domain.checkin import campus_day, check_in
from gateway.domain.reports import Audience
from gateway.services.checkin import submit_checkin
from gateway.services.checkin_followup import (
    cutoff_at,
    reminder_due,
    send_reminders,
    unit_status,
)
from gateway.services.person_export import export_person
from gateway.services.reports.service import generate_reports
from gateway.services.retention import run_retention
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.operators import add_operator

SETTINGS = Settings()


async def _check_in(conn: asyncpg.Connection, person_id: str, now: datetime, **kw: object) -> None:
    args: dict[str, object] = {"location": "on_campus", "dormitory": "D1", "temperature_c": 36.5}
    checkin = check_in(**(args | kw))  # type: ignore[arg-type]
    await submit_checkin(conn, person_id, checkin, now=now, tz=SETTINGS.tz, threshold_c=37.3)


async def test_a_liaison_sees_rate_and_missing_only_for_their_unit(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    await _check_in(campus, "S1", datetime.now(UTC))
    await _check_in(campus, "S3", datetime.now(UTC))
    liaison = await add_operator(campus, "li", "liaison")
    await set_org_unit(campus, "li", "cs")
    nobody = await add_operator(campus, "li2", "liaison")  # no unit set: sees nobody
    admin = await add_operator(campus, "root", "admin")
    guard = await add_operator(campus, "g", "guard")
    async with api(fresh_db) as app:
        async with app.operator(liaison) as client:
            mine = (await client.get("/api/checkins/today")).json()
        async with app.operator(nobody) as client:
            empty = (await client.get("/api/checkins/today")).json()
        async with app.operator(admin) as client:
            everyone = (await client.get("/api/checkins/today")).json()
        async with app.operator(guard) as client:
            assert (await client.get("/api/checkins/today")).status_code == 200
    assert (mine["expected"], mine["checked_in"], mine["rate"]) == (3, 1, 0.3333)
    assert sorted(p["id"] for p in mine["missing"]) == ["S2", "T1"]  # not S3, T2 (math)
    assert mine["org_unit"] == "cs"
    assert (empty["expected"], empty["missing"]) == (0, [])
    assert (everyone["expected"], everyone["checked_in"]) == (5, 2)  # X1 is inactive
    assert sorted(p["id"] for p in everyone["missing"]) == ["S2", "T1", "T2"]
    assert "temperature_c" not in json.dumps(mine)  # names only, no health detail


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver:
    """A real local HTTP webhook receiver."""

    def __init__(self, port: int) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
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


@pytest.fixture
def hook_port() -> Iterator[int]:
    yield _free_port()


async def test_reminders_go_to_the_missing_once_and_a_failed_post_is_sent_again(
    campus: asyncpg.Connection, hook_port: int
) -> None:
    settings = Settings(
        checkin_cutoff="10:00",
        checkin_reminder_minutes=60,
        checkin_reminder_webhook=f"http://127.0.0.1:{hook_port}/remind",
    )
    day = campus_day(datetime.now(UTC), settings.tz)
    cutoff = cutoff_at(day, settings)
    before = cutoff - timedelta(minutes=30)
    assert reminder_due(before, settings)
    assert not reminder_due(cutoff - timedelta(minutes=61), settings)
    assert not reminder_due(cutoff, settings)
    await _check_in(campus, "S1", before - timedelta(minutes=5))
    # The receiver is not up: nothing is marked sent, so the next run tries again.
    assert await send_reminders(campus, settings, before) == {"reminded": 0, "failed": 4}
    receiver = _Receiver(hook_port)
    try:
        assert await send_reminders(campus, settings, before) == {"reminded": 4, "failed": 0}
        assert await send_reminders(campus, settings, before) == {"reminded": 0, "failed": 0}
    finally:
        receiver.close()
    [body] = receiver.bodies
    assert body["type"] == "campusgate.checkin_reminder"
    assert sorted(body["people"]) == ["S2", "S3", "T1", "T2"]
    assert body["cutoff"] == cutoff.isoformat()


async def test_daily_report_has_checkin_numbers_and_missing_list_per_audience(
    campus: asyncpg.Connection, tmp_path
) -> None:
    now = datetime.now(UTC)
    await _check_in(campus, "S1", now, temperature_c=37.8)
    await _check_in(campus, "T1", now, case_contact=True)
    reports = await generate_reports(
        campus,
        day=campus_day(now, SETTINGS.tz),
        settings=Settings(data_dir=tmp_path),
        by="test",
        org_units=[None],
        now=now,
    )
    by_audience = {r.audience: r for r in reports}
    students = by_audience[Audience.STUDENT]
    staff = by_audience[Audience.STAFF]
    assert students.summary["checkins"] | {} == {
        "expected": 3,
        "made": 1,
        "missing": 2,
        "rate": 0.3333,
        "flagged": 1,
        "case_contact": 0,
    }
    assert [p["person_id"] for p in students.lists["checkin_missing"]] == ["S2", "S3"]
    assert staff.summary["checkins"]["made"] == 1
    assert staff.summary["checkins"]["case_contact"] == 1
    assert [p["person_id"] for p in staff.lists["checkin_missing"]] == ["T2"]


async def test_retention_removes_old_checkins_and_the_export_holds_them(
    campus: asyncpg.Connection,
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=SETTINGS.retention_health_days + 3)
    await _check_in(campus, "S1", old, case_contact=True)
    await _check_in(campus, "S1", now)
    await _check_in(campus, "S1", now, temperature_c=36.8)
    exported = await export_person(campus, "S1", by="root", now=now)
    assert [c["version"] for c in exported["checkins"]] == [2, 1, 1]
    assert len(exported["contact_reviews"]) == 1
    report = await run_retention(campus, SETTINGS, now)
    assert report.counts["daily_checkins"] == 1
    assert report.counts["daily_checkin_history"] == 1
    assert report.counts["checkin_contact_reviews"] == 1
    left = await campus.fetchval("SELECT count(*) FROM daily_checkin_history")
    assert left == 2


async def test_after_the_cutoff_the_missing_are_missing_and_late_ones_are_named(
    campus: asyncpg.Connection,
) -> None:
    settings = Settings(checkin_cutoff="09:00")
    day = campus_day(datetime.now(UTC), settings.tz)
    cutoff = cutoff_at(day, settings)
    await _check_in(campus, "S1", cutoff - timedelta(hours=1))
    await _check_in(campus, "S2", cutoff + timedelta(minutes=30))
    before = await unit_status(campus, settings, "cs-1", cutoff - timedelta(minutes=1))
    after = await unit_status(campus, settings, "cs-1", cutoff + timedelta(hours=1))
    assert before["past_cutoff"] is False and after["past_cutoff"] is True
    assert [p["id"] for p in after["late"]] == ["S2"]
    assert (after["expected"], after["checked_in"], after["missing"]) == (2, 2, [])
    assert after["cutoff"] == cutoff.isoformat()
