"""Caretakers' follow-up over HTTP against a real PostgreSQL (issue #15, point 4): a
caretaker records each contact with the people in their care from their own page; a
case with no contact for a day is flagged to the caretaker, after two to the health
officers; nobody reads a case that is not theirs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from person_sign_in import api_client, person_client

from api.app import create_app
from gateway.services.accounts import set_password
from gateway.services.importer import import_file
from gateway.services.person_export import export_person
from gateway.services.retention import run_retention
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
  - {id: math, name: Mathematics}
zones:
  - {id: dorm-1, name: Dorm 1, kind: dormitory}
people:
  - {id: T1, kind: staff, name: Zhang Wei, org_unit: cs, phone: "13800138001"}
  - {id: T2, kind: staff, name: Liu Yang, org_unit: math, phone: "13800138002"}
  - {id: S1, kind: student, name: Li Hua, org_unit: cs, phone: "13800138011"}
  - {id: S2, kind: student, name: Wang Fang, org_unit: math, phone: "13800138012"}
  - {id: S3, kind: student, name: Chen Jing, org_unit: cs}
health:
  - {person: S1, status: home_isolation, reason: returned from an epidemic area, caretaker: T1}
  - {person: S2, status: close_contact, reason: traced, caretaker: T2}
"""


@pytest.fixture
async def world(database_factory, tmp_path: Path):
    dsn = await asyncio.to_thread(database_factory, "care")
    await apply_migrations(dsn)
    path = tmp_path / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    tokens: dict[str, str] = {}
    try:
        await import_file(conn, path, tz=TZ, operator="test")
        # S1 has been isolated for three days, S2 for thirty hours; nobody has called.
        now = datetime.now(UTC)
        for person, ago in (("S1", timedelta(days=3)), ("S2", timedelta(hours=30))):
            await conn.execute(
                "UPDATE health_status SET since = $2 WHERE person_id = $1", person, now - ago
            )
        for role in ("admin", "health_officer", "liaison", "guard"):
            tokens[role] = await add_operator(conn, role, role)
            await set_password(conn, role, "correct horse battery", by="test")
        await set_org_unit(conn, "liaison", "cs")
    finally:
        await conn.close()
    app = create_app(Settings(database_url=dsn, login_failures_per_address=100_000), dsn)
    async with app.router.lifespan_context(app):
        yield dsn, app, tokens


async def test_quiet_cases_are_flagged_to_the_caretaker_then_the_health_officers(world) -> None:
    _, app, tokens = world
    async with api_client(app, tokens["health_officer"]) as officer:
        cases = {c["person_id"]: c for c in (await officer.get("/api/caretakers/follow-up")).json()}
        assert cases["S1"]["follow_up"] == "health_officer" and cases["S1"]["day"] >= 3
        assert cases["S2"]["follow_up"] == "caretaker"
        assert cases["S1"]["last_contact_at"] is None
        flagged = (await officer.get("/api/caretakers/follow-up?flagged=health_officer")).json()
        assert [c["person_id"] for c in flagged] == ["S1"]
        both = (await officer.get("/api/caretakers/follow-up?flagged=caretaker")).json()
        assert sorted(c["person_id"] for c in both) == ["S1", "S2"]
        bad = await officer.get("/api/caretakers/follow-up?flagged=everyone")
        assert bad.status_code == 422
    async with api_client(app, tokens["liaison"]) as liaison:  # their unit only
        seen = (await liaison.get("/api/caretakers/follow-up")).json()
        assert [c["person_id"] for c in seen] == ["S1"]
        # How a person says they are is health data: not for liaisons.
        assert (await liaison.get("/api/caretakers/cases/S1/contacts")).status_code == 403
    async with api_client(app, tokens["guard"]) as guard:
        assert (await guard.get("/api/caretakers/follow-up")).status_code == 403


async def test_a_caretaker_records_a_call_and_the_flag_clears(world) -> None:
    dsn, app, tokens = world
    async with await person_client(app, "T1") as me:
        mine = (await me.get("/api/me/care")).json()
        assert [c["person_id"] for c in mine] == ["S1"]
        assert mine[0]["phone"] == "13800138011"  # the caretaker must be able to call
        assert mine[0]["follow_up"] == "health_officer"
        answer = await me.post(
            "/api/me/care/S1/contacts",
            json={"channel": "phone", "feeling": "unwell", "temperature_c": 37.2, "note": "cough"},
        )
        assert answer.status_code == 201, answer.text
        recorded = answer.json()
        assert (recorded["caretaker_id"], recorded["recorded_by"]) == ("T1", "person:T1")
        assert (await me.get("/api/me/care")).json()[0]["follow_up"] is None
        contacts = (await me.get("/api/me/care/S1/contacts")).json()
        assert [c["feeling"] for c in contacts["contacts"]] == ["unwell"]
        assert contacts["case"]["last_contact_at"] == recorded["at"]
    async with api_client(app, tokens["health_officer"]) as officer:
        flagged = (await officer.get("/api/caretakers/follow-up?flagged=caretaker")).json()
        assert [c["person_id"] for c in flagged] == ["S2"]
        seen = (await officer.get("/api/caretakers/cases/S1/contacts")).json()
        assert seen["contacts"][0]["temperature_c"] == 37.2
        # A health officer's own call, on the caretaker's behalf.
        own = await officer.post(
            "/api/caretakers/cases/S2/contacts", json={"channel": "visit", "feeling": "well"}
        )
        assert own.status_code == 201 and own.json()["recorded_by"] == "health_officer"
    conn = await connect(dsn)
    try:
        export = await export_person(conn, "S1", by="test", now=datetime.now(UTC))
        assert [c["note"] for c in export["care_contacts"]] == ["cough"]
    finally:
        await conn.close()
    async with api_client(app, tokens["admin"]) as admin:
        audit = (await admin.get("/api/audit?entity=care_contact")).json()
    assert sorted((a["operator"], a["entity_id"]) for a in audit) == [
        ("health_officer", "S2"),
        ("person:T1", "S1"),
    ]


async def test_a_caretaker_reaches_no_case_that_is_not_theirs(world) -> None:
    _, app, _ = world
    async with await person_client(app, "T1") as me:
        for person in ("S2", "S3", "T2", "nobody", "S1'; --"):
            assert (await me.get(f"/api/me/care/{person}/contacts")).status_code == 404
            answer = await me.post(
                f"/api/me/care/{person}/contacts", json={"channel": "phone", "feeling": "well"}
            )
            assert answer.status_code == 404, person
    async with await person_client(
        app, "S1"
    ) as isolated:  # the person themself is nobody's caretaker
        assert (await isolated.get("/api/me/care")).json() == []
    async with api_client(app) as anonymous:
        assert (await anonymous.get("/api/me/care")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field_or_text"),
    [
        ({"channel": "phone", "feeling": "well", "temperature_c": 45}, "measure again"),
        ({"channel": "phone", "feeling": "well", "at": "2099-01-01T00:00:00Z"}, "future"),
        ({"channel": "phone", "feeling": "well", "at": "2020-01-01T00:00:00Z"}, "predates"),
        ({"channel": "pigeon", "feeling": "well"}, "channel"),
        ({"channel": "phone", "feeling": "fine"}, "feeling"),
        ({"channel": "phone", "feeling": "well", "note": "x" * 501}, "note"),
        ({"channel": "phone", "feeling": "well", "caretaker_id": "T2"}, "caretaker_id"),
        ({"channel": "phone"}, "feeling"),
    ],
)
async def test_a_contact_that_cannot_be_recorded_is_refused_clearly(
    world, body: dict[str, object], field_or_text: str
) -> None:
    _, app, _ = world
    async with await person_client(app, "T1") as me:
        answer = await me.post("/api/me/care/S1/contacts", json=body)
        assert answer.status_code == 422, answer.text
        assert field_or_text in answer.text
        assert (await me.get("/api/me/care/S1/contacts")).json()["contacts"] == []


async def test_contacts_go_with_the_health_period(world) -> None:
    dsn, app, _ = world
    async with await person_client(app, "T1") as me:
        answer = await me.post(
            "/api/me/care/S1/contacts", json={"channel": "message", "feeling": "well"}
        )
        assert answer.status_code == 201
    conn = await connect(dsn)
    try:
        settings = Settings(database_url=dsn, retention_health_days=15)
        now = datetime.now(UTC)
        kept = await run_retention(conn, settings, now, dry_run=True)
        assert kept.counts["care_contacts"] == 0
        later = await run_retention(conn, settings, now + timedelta(days=16), dry_run=True)
        assert later.counts["care_contacts"] == 1
    finally:
        await conn.close()


async def test_a_contact_time_without_an_offset_is_refused(world) -> None:
    _, app, _ = world
    async with await person_client(app, "T1") as me:
        answer = await me.post(
            "/api/me/care/S1/contacts",
            json={"channel": "phone", "feeling": "well", "at": "2026-12-03T08:00:00"},
        )
    assert answer.status_code == 422 and "timezone" in answer.text
