"""Areas listed after the return (issue 9, item 4) over HTTP against a real PostgreSQL:
the effective date may lie in the past, a preview shows who would be isolated without
writing anything, and destinations match by administrative division."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from api.app import create_app
from gateway.services.travel import TravelRules, Trip, declare, evaluate
from gateway.settings import Settings
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
RULES = TravelRules(isolation_days=14, tz=TZ)
TODAY = datetime.now(TZ).date()
WUHAN = "武汉市 (湖北省) 420100"


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=TZ)


@pytest.fixture
async def officer(
    campus: asyncpg.Connection, fresh_db: str
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    tokens = {role: await add_operator(campus, role, role) for role in ("health_officer",)}
    app = create_app(Settings(database_url=fresh_db), fresh_db)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {tokens['health_officer']}"},
        )
        yield client
        await client.aclose()


async def _trips(campus: asyncpg.Connection) -> None:
    trips = [
        Trip("S1", "武汉市", day(-6), day(-3)),  # back three days ago
        Trip("S2", "Wuhan, Hubei", day(-20), day(-14)),  # back 14 days ago: period over
        Trip("S3", "湖北恩施", day(-5), day(-2)),  # Hubei, not Wuhan
        Trip("S4", "Milan", day(-5), day(-3)),
        Trip("S5", "wuhan city", day(-1), day(2)),  # not back yet
    ]
    _, result = await declare(campus, trips, RULES, by="liaison")
    assert result.isolated == []  # nothing is listed yet


async def _status(campus: asyncpg.Connection, pid: str) -> asyncpg.Record | None:
    return await campus.fetchrow("SELECT * FROM health_status WHERE person_id = $1", pid)


async def test_preview_then_confirm_isolates_who_came_back_before_the_listing(
    campus: asyncpg.Connection, officer: httpx.AsyncClient
) -> None:
    await _trips(campus)
    preview = await officer.post("/api/travel/areas/preview", json={"name": "Wuhan"})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["area"]["effective_from"] == str(day(-14))  # the default: 14 days back
    assert (body["area"]["division_code"], body["area"]["place_match"]) == ("420100", WUHAN)
    rows = {r["person_id"]: r for r in body["affected"]}
    assert {p: r["outcome"] for p, r in rows.items()} == {
        "S1": "isolate",
        "S2": "period_over",
        "S5": "on_return",
    }
    assert rows["S1"]["matched"] == WUHAN and rows["S1"]["destination"] == "武汉市"
    assert datetime.fromisoformat(rows["S1"]["until"]) == start(day(11))  # return + 14
    assert rows["S1"]["until_date"] == str(day(11))
    assert rows["S1"]["person_name"] == "Li Hua" and body["truncated"] is False
    # nothing was written
    assert await _status(campus, "S1") is None
    assert await campus.fetchval("SELECT count(*) FROM epidemic_areas") == 0
    assert (
        await campus.fetchval("SELECT count(*) FROM audit_log WHERE entity = 'epidemic_area'") == 0
    )

    listed = await officer.post("/api/travel/areas", json={"name": "Wuhan"})
    assert listed.status_code == 201, listed.text
    area = listed.json()["area"]
    assert (area["effective_from"], area["division_code"]) == (str(day(-14)), "420100")
    assert listed.json()["evaluation"]["isolated"] == ["S1"]
    row = await _status(campus, "S1")
    assert (row["status"], row["until"], row["caretaker_id"]) == (
        "home_isolation",
        start(day(11)),
        "T1",
    )
    assert await _status(campus, "S2") is None and await _status(campus, "S3") is None
    declarations = (await officer.get("/api/travel/declarations")).json()
    matched = {d["person_id"]: (d["place_match"], d["divisions"]) for d in declarations}
    assert matched["S1"] == (WUHAN, ["420100"])
    assert matched["S4"] == ("text match", [])
    listing = (await officer.get("/api/travel/areas")).json()
    assert [(a["name"], a["place_match"]) for a in listing] == [("Wuhan", WUHAN)]

    # A province covers its cities: Hubei would also isolate S3 (恩施); S1 stays as is.
    hubei = await officer.post(
        "/api/travel/areas/preview", json={"name": "湖北", "effective_from": str(day(-10))}
    )
    outcomes = {r["person_id"]: r["outcome"] for r in hubei.json()["affected"]}
    assert outcomes == {"S1": "unchanged", "S3": "isolate", "S5": "on_return"}
    assert hubei.json()["area"]["place_match"] == "湖北省 420000"


async def test_listing_refuses_ambiguous_places_and_old_dates(
    campus: asyncpg.Connection, officer: httpx.AsyncClient
) -> None:
    for path in ("/api/travel/areas/preview", "/api/travel/areas"):
        ambiguous = await officer.post(path, json={"name": "Fuzhou"})
        assert ambiguous.status_code == 422 and "Fuzhou, Fujian" in ambiguous.text
        several = await officer.post(path, json={"name": "武汉、长沙"})
        assert several.status_code == 422 and "one area at a time" in several.text
        old = await officer.post(path, json={"name": "Wuhan", "effective_from": str(day(-400))})
        assert old.status_code == 422 and "days back" in old.text
        backwards = await officer.post(
            path, json={"name": "Wuhan", "effective_until": str(day(-20))}
        )
        assert backwards.status_code == 422 and "before effective_from" in backwards.text
    assert await campus.fetchval("SELECT count(*) FROM epidemic_areas") == 0
    # foreign places are listed by text, and say so
    milan = await officer.post("/api/travel/areas", json={"name": "Milan"})
    assert milan.status_code == 201, milan.text
    assert (milan.json()["area"]["division_code"], milan.json()["area"]["place_match"]) == (
        None,
        "text match",
    )
    listed = await officer.post("/api/travel/areas", json={"name": "Fuzhou, Fujian"})
    area_id = listed.json()["area"]["id"]
    patched = await officer.patch(f"/api/travel/areas/{area_id}", json={"match": "Suzhou"})
    assert patched.status_code == 422 and "Suzhou" in patched.text
    patched = await officer.patch(f"/api/travel/areas/{area_id}", json={"match": "福州"})
    assert patched.json()["area"]["division_code"] == "350100"
    old = await officer.patch(
        f"/api/travel/areas/{area_id}", json={"effective_from": str(day(-400))}
    )
    assert old.status_code == 422


async def test_rows_from_before_places_are_resolved_by_the_next_evaluation(
    campus: asyncpg.Connection,
) -> None:
    """Declarations and areas filed before this change hold no division: the next
    evaluation resolves and stores them (and then isolates by division)."""
    await campus.execute(
        "INSERT INTO travel_declarations (person_id, destination, departure_date, return_date,"
        " declared_by) VALUES ('S1', '湖北省武汉市洪山区', $1, $2, 'old')",
        day(-10),
        day(-2),
    )
    await campus.execute(
        "INSERT INTO epidemic_areas (name, match, effective_from, created_by, updated_by)"
        " VALUES ('Wuhan', 'Wuhan', $1, 'old', 'old')",
        day(-10),
    )
    result = await evaluate(campus, RULES, by="travel")
    assert result.isolated == ["S1"]
    trip = await campus.fetchrow("SELECT divisions, place_match FROM travel_declarations")
    assert (trip["divisions"], trip["place_match"]) == (["420111"], "洪山区 (湖北省 武汉市) 420111")
    area = await campus.fetchrow("SELECT division_code, place_match FROM epidemic_areas")
    assert tuple(area) == ("420100", WUHAN)


async def test_csv_import_resolves_chinese_and_english_destinations(
    campus: asyncpg.Connection,
) -> None:
    from gateway.services.travel_import import import_declarations

    header = "person_id,destination,departure_date,return_date\n"
    rows = (
        f"S1,湖北武汉,{day(-5)},{day(-3)}\n"
        f'S2,"Wuhan, Hubei",{day(-5)},{day(-3)}\n'
        f"S4,Milan,{day(-5)},{day(-3)}\n"
    )
    count, _, _ = await import_declarations(campus, header + rows, "forms.csv", RULES, by="ho")
    assert count == 3
    stored = await campus.fetch(
        "SELECT person_id, divisions, place_match FROM travel_declarations ORDER BY person_id"
    )
    assert [tuple(r) for r in stored] == [
        ("S1", ["420100"], WUHAN),
        ("S2", ["420100"], WUHAN),
        ("S4", [], "text match"),
    ]


async def test_a_long_preview_is_read_by_pages_and_cut(
    campus: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.services import travel_preview

    monkeypatch.setattr(travel_preview, "_PAGE", 2)
    monkeypatch.setattr(travel_preview, "MAX_LISTED", 2)
    trips = [Trip(p, "Wuhan", day(-6), day(-k)) for k, p in enumerate(["S1", "S2", "S3"], 1)]
    await declare(campus, [*trips, Trip("S4", "Milan", day(-6), day(-1))], RULES, by="ho")
    values = {"name": "Wuhan", "match": "Wuhan", "effective_from": day(-14)}
    answer = await travel_preview.preview_area(
        campus, {**values, "effective_until": None}, RULES, by="ho"
    )
    assert answer["truncated"] is True
    assert [r["person_id"] for r in answer["affected"]] == ["S3", "S2"]  # oldest return first
    monkeypatch.setattr(travel_preview, "MAX_LISTED", 3)
    answer = await travel_preview.preview_area(
        campus, {**values, "effective_until": None}, RULES, by="ho"
    )
    assert answer["truncated"] is False and len(answer["affected"]) == 3
    assert await campus.fetchval("SELECT count(*) FROM health_status") == 0
