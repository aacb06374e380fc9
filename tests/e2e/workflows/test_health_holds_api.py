"""Issue 9 over HTTP against a real PostgreSQL: caretakers who can care, the day of
isolation counted from the return, and fever_watch lifted only after a normal reading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from api.app import create_app
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.settings import Settings
from gateway.store.health import set_health
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_for(campus: asyncpg.Connection, fresh_db: str) -> AsyncIterator[Client]:
    tokens = {role: await add_operator(campus, role, role) for role in ("health_officer", "guard")}
    app = create_app(Settings(database_url=fresh_db, timezone=str(TZ)), fresh_db)
    clients: list[httpx.AsyncClient] = []

    def make(role: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )
        clients.append(client)
        return client

    async with app.router.lifespan_context(app):
        yield make
        for client in clients:
            await client.aclose()


async def _set(conn: asyncpg.Connection, pid: str, status: HealthStatus, carer: str | None) -> None:
    now = datetime.now(UTC)
    until = now + timedelta(days=7) if carer else None
    record = HealthRecord(pid, status, now - timedelta(minutes=5), until, "set", carer, "t")
    await set_health(conn, record, changed_by="t")


async def _names(conn: asyncpg.Connection) -> dict[str, str]:
    return {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM people")}


async def test_a_held_caretaker_is_refused_and_their_cases_reassigned(
    client_for: Client, campus: asyncpg.Connection
) -> None:
    officer = client_for("health_officer")
    await _set(campus, "S1", HealthStatus.HOME_ISOLATION, "T1")
    await _set(campus, "S4", HealthStatus.HOME_ISOLATION, "T3")
    await _set(campus, "T2", HealthStatus.FEVER_WATCH, None)
    named = await officer.put(
        "/api/health/S2", json={"status": "home_isolation", "reason": "r", "caretaker_id": "T2"}
    )
    assert named.status_code == 422, named.text
    [problem] = named.json()["detail"]
    assert problem["loc"] == ["body", "caretaker_id"]
    assert problem["msg"].startswith("caretaker 'T2' is fever_watch and cannot care")
    # T1 becomes a close contact: S1 has nobody eligible left in cs (T2 is held).
    held = await officer.put("/api/health/T1", json={"status": "close_contact", "reason": "met"})
    assert held.status_code == 200, held.text
    body = held.json()
    assert body["caretaker_id"] is None  # T1's own: no eligible staff either
    [moved] = body["reassigned"]
    assert (moved["person_id"], moved["previous_caretaker_id"], moved["caretaker_id"]) == (
        "S1",
        "T1",
        None,
    )
    # Names beside the ids, for the console (ids on hover); None where no id.
    names = await _names(campus)
    assert (moved["person_name"], moved["previous_caretaker_name"], moved["caretaker_name"]) == (
        names["S1"],
        names["T1"],
        None,
    )
    assert (body["person_name"], body["caretaker_name"]) == (names["T1"], None)
    history = (await officer.get("/api/health/S1")).json()["history"]
    assert history[-1]["reason"] == moved["reason"] and "no eligible caretaker" in moved["reason"]
    assert [(h["caretaker_id"], h["caretaker_name"]) for h in history[-2:]] == [
        ("T1", names["T1"]),
        (None, None),
    ]
    cases = (await officer.get("/api/caretakers/cases")).json()
    assert {(c["person_id"], c["caretaker_id"]) for c in cases} >= {("S1", None), ("S4", "T3")}
    # Through tracing: T3 marked close contact hands S4 on (math has nobody else either).
    marked = await officer.post(
        "/api/tracing/S5/mark", json={"contacts": ["T3"], "reason": "shared a lab"}
    )
    assert marked.status_code == 200, marked.text
    assert [(r["person_id"], r["caretaker_id"]) for r in marked.json()["reassigned"]] == [
        ("S4", None)
    ]
    [contact] = marked.json()["marked"]
    assert (contact["person_id"], contact["person_name"]) == ("T3", names["T3"])
    [handed] = marked.json()["reassigned"]
    assert (handed["person_name"], handed["previous_caretaker_name"]) == (names["S4"], names["T3"])


async def test_reassigned_to_the_least_loaded_free_staff(
    client_for: Client, campus: asyncpg.Connection
) -> None:
    officer = client_for("health_officer")
    await _set(campus, "S1", HealthStatus.HOME_ISOLATION, "T1")
    await _set(campus, "S2", HealthStatus.HOME_ISOLATION, "T1")
    review = await officer.put("/api/health/T1", json={"status": "fever_watch", "reason": "38.1"})
    assert [(r["person_id"], r["caretaker_id"]) for r in review.json()["reassigned"]] == [
        ("S1", "T2"),
        ("S2", "T2"),
    ]
    names = await _names(campus)
    assert {r["caretaker_name"] for r in review.json()["reassigned"]} == {names["T2"]}
    listed = (await officer.get("/api/health?status=home_isolation")).json()
    assert {(r["person_id"], r["caretaker_id"], r["caretaker_name"]) for r in listed} == {
        ("S1", "T2", names["T2"]),
        ("S2", "T2", names["T2"]),
    }
    record = (await officer.get("/api/health/S1")).json()
    assert (record["current"]["caretaker_id"], record["current"]["caretaker_name"]) == (
        "T2",
        names["T2"],
    )
    cases = (await officer.get("/api/caretakers/T2/cases")).json()
    assert [c["person_id"] for c in cases] == ["S1", "S2"]


async def test_the_day_of_isolation_counts_from_the_return(client_for: Client) -> None:
    officer = client_for("health_officer")
    today = datetime.now(TZ).date()
    area = {"name": "Wuhan", "effective_from": str(today - timedelta(days=30))}
    assert (await officer.post("/api/travel/areas", json=area)).status_code == 201
    back = today - timedelta(days=5)
    trip = {
        "person_id": "S1",
        "destination": "Wuhan",
        "departure_date": str(back - timedelta(days=4)),
        "return_date": str(back),
    }
    declared = await officer.post("/api/travel/declarations", json=trip)
    assert declared.json()["evaluation"]["isolated"] == ["S1"], declared.text
    [case] = (await officer.get("/api/caretakers/cases")).json()
    assert (case["person_id"], case["day"]) == ("S1", 6)
    assert datetime.fromisoformat(case["since"]).astimezone(TZ).date() == back
    assert datetime.fromisoformat(case["until"]).astimezone(TZ).date() == back + timedelta(14)
    [summary] = (await officer.get("/api/caretakers")).json()
    assert summary["longest_day"] == 6


@pytest.mark.parametrize("route", ["clear", "put"])
async def test_fever_watch_is_cleared_only_after_a_normal_reading(
    client_for: Client, campus: asyncpg.Connection, route: str
) -> None:
    officer, guard = client_for("health_officer"), client_for("guard")
    await _set(campus, "S1", HealthStatus.FEVER_WATCH, None)

    async def clear() -> httpx.Response:
        if route == "clear":
            return await officer.post("/api/health/S1/clear", json={"reason": "fine"})
        return await officer.put("/api/health/S1", json={"status": "clear", "reason": "fine"})

    refused = await clear()
    assert refused.status_code == 409 and "record a reading first" in refused.text
    assert (await guard.post("/api/health/S1/readings", json={"celsius": 38.0})).status_code == 201
    refused = await clear()
    assert refused.status_code == 409 and "is a fever" in refused.text
    assert (await guard.post("/api/health/S1/readings", json={"celsius": 36.5})).status_code == 201
    cleared = await clear()
    assert cleared.status_code == 200 and cleared.json()["status"] == "clear", cleared.text
