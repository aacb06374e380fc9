"""Trips people plan themselves, over HTTP against a real PostgreSQL (issue #15, point
3): planned ahead, approved or refused by the liaison where the level says so, called
off, and closed by declaring the return; a return from a listed area isolates the person
as any trip does, and nobody touches another person's trips."""

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
from gateway.services.travel import TravelRules, evaluate
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
  - {id: T1, kind: staff, name: Zhang Wei, org_unit: cs}
  - {id: S1, kind: student, name: Li Hua, org_unit: cs}
  - {id: S2, kind: student, name: Wang Fang, org_unit: math}
  - {id: S9, kind: student, name: Gone Away, org_unit: cs, active: false}
"""


@pytest.fixture
async def world(database_factory, tmp_path: Path):
    dsn = await asyncio.to_thread(database_factory, "trips")
    await apply_migrations(dsn)
    path = tmp_path / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    tokens: dict[str, str] = {}
    try:
        await import_file(conn, path, tz=TZ, operator="test")
        for role in ("admin", "health_officer", "liaison"):
            tokens[role] = await add_operator(conn, role, role)
            await set_password(conn, role, "correct horse battery", by="test")
        await set_org_unit(conn, "liaison", "cs")
    finally:
        await conn.close()
    settings = Settings(database_url=dsn, login_failures_per_address=100_000, tz="Asia/Shanghai")
    app = create_app(settings, dsn)
    async with app.router.lifespan_context(app):
        async with api_client(app, tokens["health_officer"]) as officer:
            listed = await officer.post("/api/travel/areas", json={"name": "武汉市"})
            assert listed.status_code == 201, listed.text
        yield app, tokens


def _today() -> str:
    return datetime.now(TZ).date().isoformat()


def _in(days: int) -> str:
    return (datetime.now(TZ).date() + timedelta(days=days)).isoformat()


async def _status(app, tokens, person: str) -> str | None:
    async with api_client(app, tokens["health_officer"]) as officer:
        current = (await officer.get(f"/api/health/{person}")).json()["current"]
    return None if current is None else current["status"]


async def test_a_planned_trip_to_a_listed_area_isolates_on_the_return(world) -> None:
    app, tokens = world
    async with await person_client(app, "S1") as me:
        plan = await me.post(
            "/api/me/trips",
            json={"destination": "湖北省武汉市", "departure_date": _today(), "return_date": _in(3)},
        )
        assert plan.status_code == 201, plan.text
        body = plan.json()
        trip = body["declaration"]
        assert (trip["approval"], trip["source"], trip["planned"]) == ("not_needed", "person", True)
        assert body["matched_areas"] == ["武汉市"] and body["isolated"] is False
        assert await _status(app, tokens, "S1") is None  # not back yet: nobody is isolated
        early = await me.post(f"/api/me/trips/{trip['id']}/return", json={"return_date": _in(1)})
        assert early.status_code == 422 and "once you are back" in early.text
        back = await me.post(f"/api/me/trips/{trip['id']}/return", json={"return_date": _today()})
        assert back.status_code == 200, back.text
        assert back.json()["isolated"] is True
        assert back.json()["declaration"]["return_date"] == _today()
        mine = (await me.get("/api/me/trips")).json()
        assert [t["id"] for t in mine] == [trip["id"]] and mine[0]["returned_at"]
    assert await _status(app, tokens, "S1") == "home_isolation"


async def test_where_the_level_says_so_a_liaison_approves_or_refuses(world) -> None:
    app, tokens = world
    async with api_client(app, tokens["health_officer"]) as officer:
        assert (await officer.put("/api/levels", json={"level": "lockdown"})).status_code == 200
    async with await person_client(app, "S1") as me:
        first = (await me.post(
            "/api/me/trips",
            json={"destination": "武汉", "departure_date": _today(), "return_date": _today()},
        )).json()["declaration"]  # fmt: skip
        second = (await me.post(
            "/api/me/trips",
            json={"destination": "北京", "departure_date": _in(2), "return_date": _in(4)},
        )).json()["declaration"]  # fmt: skip
    async with await person_client(app, "S2") as other_unit:
        foreign = (await other_unit.post(
            "/api/me/trips",
            json={"destination": "上海", "departure_date": _in(1), "return_date": _in(2)},
        )).json()["declaration"]  # fmt: skip
    assert first["approval"] == second["approval"] == "pending"
    # A plan waiting (or refused) isolates nobody even when its dates have come.
    assert await _status(app, tokens, "S1") is None
    async with api_client(app, tokens["liaison"]) as liaison:
        waiting = (await liaison.get("/api/travel/plans/pending")).json()
        assert [p["id"] for p in waiting] == [first["id"], second["id"]]  # their unit only
        refused = await liaison.post(
            f"/api/travel/plans/{first['id']}/refuse", json={"note": "not during lockdown"}
        )
        assert refused.status_code == 200, refused.text
        assert refused.json()["declaration"]["approval_note"] == "not during lockdown"
        approved = await liaison.post(f"/api/travel/plans/{second['id']}/approve", json={})
        assert approved.json()["declaration"]["approval"] == "approved"
        again = await liaison.post(f"/api/travel/plans/{second['id']}/refuse", json={})
        assert again.status_code == 409
        outside = await liaison.post(f"/api/travel/plans/{foreign['id']}/approve", json={})
        assert outside.status_code == 404  # another unit's person: as if there were none
        assert (await liaison.get("/api/travel/plans/pending")).json() == []
    assert await _status(app, tokens, "S1") is None
    async with await person_client(app, "S1") as me:  # went anyway, and says so
        back = await me.post(f"/api/me/trips/{first['id']}/return", json={"return_date": _today()})
        assert back.json()["isolated"] is True
    async with api_client(app, tokens["admin"]) as admin:
        actions = [
            a["action"] for a in (await admin.get("/api/audit?entity=travel_declaration")).json()
        ]
    assert {"plan_trip", "refuse_trip", "approve_trip", "declare_return"} <= set(actions)


async def test_calling_off_before_leaving(world) -> None:
    app, _ = world
    async with await person_client(app, "S1") as me:
        trip = (await me.post(
            "/api/me/trips",
            json={"destination": "武汉", "departure_date": _in(1), "return_date": _in(2)},
        )).json()["declaration"]  # fmt: skip
        off = await me.post(f"/api/me/trips/{trip['id']}/cancel")
        assert off.status_code == 200 and off.json()["cancelled_at"]
        assert (await me.post(f"/api/me/trips/{trip['id']}/cancel")).status_code == 200
        back = await me.post(f"/api/me/trips/{trip['id']}/return", json={"return_date": _today()})
        assert back.status_code == 409 and "called off" in back.text


async def test_nobody_touches_another_persons_trips(world) -> None:
    app, _ = world
    async with await person_client(app, "S1") as me:
        trip = (await me.post(
            "/api/me/trips",
            json={"destination": "北京", "departure_date": _in(1), "return_date": _in(2)},
        )).json()["declaration"]  # fmt: skip
    async with await person_client(app, "S2") as other:
        assert (await other.get("/api/me/trips")).json() == []
        for path in (f"{trip['id']}/cancel", "999999/cancel"):
            assert (await other.post(f"/api/me/trips/{path}")).status_code == 404
        answer = await other.post(
            f"/api/me/trips/{trip['id']}/return", json={"return_date": _today()}
        )
        assert answer.status_code == 404
    async with api_client(app) as anonymous:
        assert (await anonymous.get("/api/me/trips")).status_code == 401


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"destination": "北京", "departure_date": "2020-01-01", "return_date": "2020-01-02"},
            "before leaving",
        ),
        (
            {"destination": "北京", "departure_date": "+2", "return_date": "+1"},
            "before the departure",
        ),
        ({"destination": "   ", "departure_date": "+1", "return_date": "+2"}, "destination"),
        (
            {"destination": "北京", "departure_date": "+1", "return_date": "+2", "note": "x" * 501},
            "note",
        ),
        (
            {"destination": "北京", "departure_date": "+1", "return_date": "+2", "person_id": "S2"},
            "person_id",
        ),
        (
            {"destination": "北京", "departure_date": "tomorrow", "return_date": "+2"},
            "departure_date",
        ),
    ],
)
async def test_a_plan_that_cannot_be_filed_is_refused_clearly(world, body, text) -> None:
    app, _ = world
    given = {
        k: _in(int(v)) if isinstance(v, str) and v.startswith("+") else v for k, v in body.items()
    }
    async with await person_client(app, "S1") as me:
        answer = await me.post("/api/me/trips", json=given)
        assert answer.status_code == 422, answer.text
        assert text in answer.text
        assert (await me.get("/api/me/trips")).json() == []


async def test_the_same_plan_twice_is_a_conflict(world) -> None:
    app, _ = world
    trip = {"destination": "北京", "departure_date": _in(1), "return_date": _in(2)}
    async with await person_client(app, "S1") as me:
        assert (await me.post("/api/me/trips", json=trip)).status_code == 201
        again = await me.post("/api/me/trips", json=trip)
        assert again.status_code == 409 and "planned already" in again.text


async def test_a_plan_isolates_nobody_before_its_traveller_is_back(world) -> None:
    app, tokens = world
    async with await person_client(app, "S1") as me:
        answer = await me.post(
            "/api/me/trips",
            json={"destination": "武汉", "departure_date": _today(), "return_date": _today()},
        )
        assert answer.json()["matched_areas"] == ["武汉市"]
    # Leaving today and back tonight: not isolated while away; the return (declared, or
    # the planned day over) is what counts, as for any trip.
    assert await _status(app, tokens, "S1") is None


async def test_a_plan_counts_once_its_return_day_is_over(world) -> None:
    app, tokens = world
    async with await person_client(app, "S1") as me:
        trip = (await me.post(
            "/api/me/trips",
            json={"destination": "武汉", "departure_date": _today(), "return_date": _today()},
        )).json()["declaration"]  # fmt: skip
    conn = await connect(app.state.settings.database_url)
    try:  # the next evaluation (a job runs them) after the planned day
        rules = TravelRules(14, TZ)
        result = await evaluate(conn, rules, by="test", now=datetime.now(UTC) + timedelta(days=1))
    finally:
        await conn.close()
    assert result.isolated == ["S1"], trip
    assert await _status(app, tokens, "S1") == "home_isolation"


async def test_a_return_cannot_be_moved_to_shorten_an_isolation(world) -> None:
    """Only a plan not yet back takes a return, once: an operator's trip, or a return on
    file, keeps its dates (an earlier return would end the isolation sooner)."""
    app, tokens = world
    async with api_client(app, tokens["health_officer"]) as officer:
        filed = await officer.post(
            "/api/travel/declarations",
            json={"person_id": "S1", "destination": "武汉", "departure_date": _in(-3),
                  "return_date": _today()},
        )  # fmt: skip
        assert filed.status_code == 201, filed.text
        filed_id = filed.json()["declaration"]["id"]
    assert await _status(app, tokens, "S1") == "home_isolation"
    async with await person_client(app, "S1") as me:
        moved = await me.post(f"/api/me/trips/{filed_id}/return", json={"return_date": _in(-3)})
        assert moved.status_code == 409 and "filed for you" in moved.text
        plan = (await me.post(
            "/api/me/trips",
            json={"destination": "北京", "departure_date": _today(), "return_date": _today()},
        )).json()["declaration"]  # fmt: skip
        back = await me.post(f"/api/me/trips/{plan['id']}/return", json={"return_date": _today()})
        assert back.status_code == 200
        again = await me.post(f"/api/me/trips/{plan['id']}/return", json={"return_date": _today()})
        assert again.status_code == 409 and "declared already" in again.text
