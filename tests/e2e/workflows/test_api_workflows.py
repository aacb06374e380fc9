"""The health, caretaker and travel routes over HTTP: permissions per role, and the flows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from wf_campus import seed_campus

from api.app import create_app
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.db import connect
from gateway.store.health import set_health
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
ROLES = ("admin", "guard", "health_officer", "liaison")
TODAY = datetime.now(TZ).date()


@pytest.fixture(scope="module")
async def world(database_factory) -> AsyncIterator[tuple[object, dict[str, str], str]]:
    dsn = await asyncio.to_thread(database_factory, "wfapi")
    await apply_migrations(dsn)
    conn = await connect(dsn)
    tokens = {}
    try:
        await seed_campus(conn)
        for role in ROLES:
            tokens[role] = await add_operator(conn, role, role)
        await set_org_unit(conn, "liaison", "cs")
        now = datetime.now(UTC)
        for pid in ("S1", "S2", "S3"):
            record = HealthRecord(pid, HealthStatus.FEVER_WATCH, now - timedelta(minutes=5))
            await set_health(conn, record, changed_by="gateway")
    finally:
        await conn.close()
    app = create_app(Settings(database_url=dsn), dsn)
    async with app.router.lifespan_context(app):
        yield app, tokens, dsn


@pytest.fixture
async def client_for(world) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    app, tokens, _ = world
    clients: list[httpx.AsyncClient] = []

    def make(role: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


TRIP = {
    "person_id": "NOBODY",
    "destination": "x",
    "departure_date": str(TODAY),
    "return_date": str(TODAY),
}
AREA = {"name": "Nowhere-perm", "effective_from": str(TODAY - timedelta(days=300))}
# (method, path, body, roles allowed): the others get 403, anonymous 401, nobody a 5xx.
ROUTES = [
    ("GET", "/api/health/fever-watch", None, {"admin", "guard", "health_officer"}),
    (
        "POST",
        "/api/health/NOBODY/readings",
        {"celsius": 36.5},
        {"admin", "guard", "health_officer"},
    ),
    ("GET", "/api/health/fever-review", None, {"admin", "health_officer"}),
    ("GET", "/api/health/S1/readings", None, {"admin", "health_officer"}),
    ("GET", "/api/health/S1", None, {"admin", "health_officer"}),
    (
        "POST",
        "/api/health/NOBODY/fever-review",
        {"outcome": "clear", "reason": "r"},
        {"admin", "health_officer"},
    ),
    ("GET", "/api/caretakers", None, {"admin", "health_officer", "liaison"}),
    ("GET", "/api/caretakers/cases", None, {"admin", "health_officer", "liaison"}),
    ("GET", "/api/caretakers/T1/cases", None, {"admin", "health_officer", "liaison"}),
    ("GET", "/api/travel/declarations", None, {"admin", "health_officer", "liaison"}),
    ("POST", "/api/travel/declarations", TRIP, {"admin", "health_officer", "liaison"}),
    ("POST", "/api/travel/declarations/999999/waive", None, {"admin", "health_officer"}),
    ("GET", "/api/travel/areas", None, {"admin", "health_officer", "liaison"}),
    ("POST", "/api/travel/areas/preview", AREA, {"admin", "health_officer"}),
    ("POST", "/api/travel/areas", AREA, {"admin", "health_officer"}),
    ("PATCH", "/api/travel/areas/999999", {"name": "y"}, {"admin", "health_officer"}),
    ("DELETE", "/api/travel/areas/999999", None, {"admin", "health_officer"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_permission_matrix(client_for, role, method, path, body, allowed) -> None:
    response = await client_for(role).request(method, path, json=body)
    if role in allowed:
        assert response.status_code in (200, 201, 404, 409), response.text
    else:
        assert response.status_code == 403, response.text
    assert (await client_for(None).request(method, path, json=body)).status_code == 401


async def test_guard_records_a_reading_without_seeing_health_details(client_for) -> None:
    guard = client_for("guard")
    watch = (await guard.get("/api/health/fever-watch", params={"q": "li hua"})).json()
    assert [p["person_id"] for p in watch] == ["S1"]
    assert set(watch[0]) == {"person_id", "name", "org_unit_id", "since", "readings"}
    response = await guard.post("/api/health/S1/readings", json={"celsius": 37.8, "note": "ear"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["fever"], body["celsius"], body["recorded_by"]) == (True, 37.8, "guard")
    normal = (await guard.post("/api/health/S1/readings", json={"celsius": 36.4})).json()
    assert normal["fever"] is False
    refused = await guard.post("/api/health/S4/readings", json={"celsius": 36.4})
    assert refused.status_code == 409  # not on fever_watch
    bad = await guard.post("/api/health/S1/readings", json={"celsius": 60})
    assert bad.status_code == 422
    naive = await guard.post(
        "/api/health/S1/readings", json={"celsius": 36.4, "measured_at": "2026-01-01T10:00:00"}
    )
    assert naive.status_code == 422
    assert (await guard.get("/api/health/S1")).status_code == 403


async def test_officer_reviews_readings_then_clears_or_escalates(client_for) -> None:
    officer = client_for("health_officer")
    review = (await officer.get("/api/health/fever-review")).json()
    s1 = next(p for p in review if p["person_id"] == "S1")
    assert [r["celsius"] for r in s1["readings"]] == [36.4, 37.8]
    cleared = await officer.post(
        "/api/health/S1/fever-review", json={"outcome": "clear", "reason": "36.4 C"}
    )
    assert cleared.status_code == 200 and cleared.json()["status"] == "clear"
    again = await officer.post(
        "/api/health/S1/fever-review", json={"outcome": "suspected", "reason": "late"}
    )
    assert again.status_code == 409
    escalated = await officer.post(
        "/api/health/S2/fever-review", json={"outcome": "suspected", "reason": "38.5 C"}
    )
    assert escalated.json()["status"] == "suspected" and escalated.json()["caretaker_id"] == "T1"
    assert escalated.json()["caretaker_name"] == "Zhang Wei"  # beside the id, for the console
    wrong = await officer.put(
        "/api/health/S3",
        json={"status": "confirmed", "reason": "r", "caretaker_id": "S4"},
    )
    assert wrong.status_code == 422 and "not staff" in wrong.text
    # caretakers see the case with its day of isolation, the liaison only within cs
    cases = (await officer.get("/api/caretakers/T1/cases")).json()
    assert [(c["person_id"], c["day"], c["status"]) for c in cases] == [("S2", 1, "suspected")]
    assert "reason" not in cases[0]
    liaison = (await client_for("liaison").get("/api/caretakers")).json()
    assert liaison == [
        {"caretaker_id": "T1", "caretaker_name": "Zhang Wei", "cases": 1, "longest_day": 1}
    ]
    unmask = await client_for("liaison").get("/api/caretakers/cases", params={"unmask": "true"})
    assert unmask.status_code == 403


async def test_declarations_and_areas_over_http(client_for, world) -> None:
    officer, liaison = client_for("health_officer"), client_for("liaison")
    area = await officer.post(
        "/api/travel/areas",
        json={"name": "Harbin", "effective_from": str(TODAY - timedelta(days=10))},
    )
    assert area.status_code == 201 and area.json()["area"]["match"] == "Harbin"
    area_id = area.json()["area"]["id"]
    twice = await officer.post(
        "/api/travel/areas",
        json={"name": "harbin", "effective_from": str(TODAY - timedelta(days=3))},
    )
    assert twice.status_code == 409 and "already listed" in twice.text
    later = await officer.post(  # the same name for a period that does not overlap is fine
        "/api/travel/areas",
        json={
            "name": "Harbin",
            "effective_from": str(TODAY - timedelta(days=300)),
            "effective_until": str(TODAY - timedelta(days=200)),
        },
    )
    assert later.status_code == 201, later.text
    trip = {
        "person_id": "S3",
        "destination": "Harbin",
        "departure_date": str(TODAY - timedelta(days=4)),
        "return_date": str(TODAY - timedelta(days=1)),
    }
    declared = await liaison.post("/api/travel/declarations", json=trip)
    assert declared.status_code == 201, declared.text
    # S3 is on fever_watch: travel waits for the officer's decision
    assert declared.json()["evaluation"]["waiting"] == ["S3"]
    outside = await liaison.post("/api/travel/declarations", json={**trip, "person_id": "S4"})
    assert outside.status_code == 404  # not in the liaison's org unit
    backwards = await liaison.post(
        "/api/travel/declarations", json={**trip, "return_date": str(TODAY - timedelta(days=9))}
    )
    assert backwards.status_code == 422
    mine = (await liaison.get("/api/travel/declarations", params={"open": "true"})).json()
    assert [d["person_id"] for d in mine] == ["S3"]
    csv = (
        "person_id,destination,departure_date,return_date\n"
        f"S4,Harbin,{TODAY - timedelta(days=3)},{TODAY - timedelta(days=2)}\n"
    )
    refused = await liaison.post(
        "/api/travel/declarations/import", files={"file": ("trips.csv", csv, "text/csv")}
    )
    assert refused.status_code == 422 and "trips.csv: row 2" in refused.text
    imported = await officer.post(
        "/api/travel/declarations/import", files={"file": ("trips.csv", csv, "text/csv")}
    )
    assert imported.status_code == 200 and imported.json()["evaluation"]["isolated"] == ["S4"]
    health = (await officer.get("/api/health/S4")).json()["current"]
    assert (health["status"], health["caretaker_id"]) == ("home_isolation", "T3")
    removed = await officer.delete(f"/api/travel/areas/{area_id}")
    assert removed.json()["evaluation"]["lifted"] == ["S4"]
    bad = await officer.patch("/api/travel/areas/1", json={"effective_from": None})
    assert bad.status_code in (404, 422)
    conn = await connect(world[2])
    try:
        actions = {
            tuple(r)
            for r in await conn.fetch(
                "SELECT operator, action FROM audit_log WHERE entity IN "
                "('epidemic_area', 'travel_declaration')"
            )
        }
    finally:
        await conn.close()
    assert {
        ("health_officer", "create"),
        ("liaison", "declare"),
        ("health_officer", "import"),
    } <= actions
    assert ("health_officer", "delete") in actions


async def test_until_date_means_the_start_of_that_campus_day(client_for) -> None:
    officer = client_for("health_officer")
    day = TODAY + timedelta(days=10)
    response = await officer.put(
        "/api/health/S4",
        json={"status": "home_isolation", "reason": "returned", "until_date": str(day)},
    )
    assert response.status_code == 200, response.text
    until = datetime.fromisoformat(response.json()["until"])
    assert until == datetime.combine(
        day, datetime.min.time(), tzinfo=TZ
    )  # 16:00 UTC the day before
    both = await officer.put(
        "/api/health/S4",
        json={
            "status": "home_isolation",
            "reason": "r",
            "until_date": str(day),
            "until": f"{day}T00:00:00+08:00",
        },
    )
    assert both.status_code == 422 and "not both" in both.text
