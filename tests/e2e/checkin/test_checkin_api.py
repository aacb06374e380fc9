"""POST /api/me/checkin and GET /api/me/checkins against a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest
from checkin_campus import api
from person_sign_in import person_bearer

from gateway.services.checkin import MAX_CHECKINS_PER_DAY
from gateway.services.person_accounts import InactivePersonError, UnknownPersonError
from gateway.store.operators import add_operator


async def test_nobody_signed_in_is_refused(campus: asyncpg.Connection, fresh_db: str) -> None:
    async with api(fresh_db) as person:
        response = await person.client.post("/api/me/checkin", json={})
        assert response.status_code == 401
        assert (await person.client.get("/api/me/checkins")).status_code == 401


async def test_second_checkin_the_same_day_updates_and_keeps_history(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    async with api(fresh_db) as person:
        first = await person.check_in("S1", temperature_c=36.4)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["updated"] is False and body["hold"] is None
        second = await person.check_in(
            "S1", location="off_campus", dormitory=None, city="Wuhan", temperature_c=36.7
        )
        assert second.status_code == 200, second.text
        assert second.json()["updated"] is True and second.json()["day"] == body["day"]
        mine = (await person.client.get("/api/me/checkins")).json()
    assert mine["today"]["city"] == "Wuhan" and mine["today"]["version"] == 2
    assert [h["version"] for h in mine["history"]] == [2, 1]
    assert [h["temperature_c"] for h in mine["history"]] == [36.7, 36.4]
    assert await campus.fetchval("SELECT count(*) FROM daily_checkins") == 1
    assert await campus.fetchval("SELECT count(*) FROM daily_checkin_history") == 2
    audited = await campus.fetch(
        "SELECT operator, after FROM audit_log WHERE entity = 'daily_checkin' ORDER BY id"
    )
    assert [r["operator"] for r in audited] == ["person:S1", "person:S1"]


async def test_checkins_are_capped_per_day(campus: asyncpg.Connection, fresh_db: str) -> None:
    async with api(fresh_db) as person:
        first = await person.check_in("S1", temperature_c=36.4)
        assert first.status_code == 200, first.text
        for _ in range(MAX_CHECKINS_PER_DAY - 1):
            assert (await person.submit(temperature_c=36.5)).status_code == 200
        over = await person.submit(temperature_c=36.6)
    assert over.status_code == 429, over.text
    assert f"at most {MAX_CHECKINS_PER_DAY} check-ins a day" in over.json()["detail"]
    assert await campus.fetchval("SELECT version FROM daily_checkins") == MAX_CHECKINS_PER_DAY
    assert (
        await campus.fetchval("SELECT count(*) FROM daily_checkin_history") == MAX_CHECKINS_PER_DAY
    )


async def test_a_person_sees_only_their_own_checkins(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    async with api(fresh_db) as person:
        assert (await person.check_in("S1", temperature_c=36.4)).status_code == 200
        await person.sign_in("S2")
        mine = (await person.client.get("/api/me/checkins")).json()
    assert mine["today"] is None and mine["history"] == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"temperature_c": 33.9}, "temperature_c", "greater than or equal to 34"),
        ({"temperature_c": 43.1}, "temperature_c", "less than or equal to 43"),
        ({"temperature_c": "hot"}, "temperature_c", "valid number"),
        ({"symptoms": ["sneezing"]}, "symptoms", "fever"),
        ({"location": "moon"}, "location", "on_campus"),
        ({"dormitory": "D" * 101}, "dormitory", "at most 100"),
        ({"travel_plans": "x" * 1001}, "travel_plans", "at most 1000"),
        ({"dormitory": None}, "dormitory", "name the dormitory"),
        ({"city": "Beijing"}, "city", "leave city out"),
        ({"location": "off_campus", "dormitory": None}, "city", "name the city"),
        ({"shoe_size": 42}, "shoe_size", "Extra inputs"),
    ],
)
async def test_invalid_bodies_are_refused_with_a_clear_message(
    campus: asyncpg.Connection, fresh_db: str, change: dict, field: str, words: str
) -> None:
    async with api(fresh_db) as person:
        response = await person.check_in("S1", **change)
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if field in e["loc"]]
    assert words in error["msg"]
    assert await campus.fetchval("SELECT count(*) FROM daily_checkins") == 0


async def test_unknown_or_deactivated_person_is_refused(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    # Nobody outside the roster, and nobody deactivated, gets a session at all ...
    with pytest.raises(UnknownPersonError):
        await person_bearer(fresh_db, "NOPE")
    with pytest.raises(InactivePersonError):
        await person_bearer(fresh_db, "X1")
    async with api(fresh_db) as person:
        await person.sign_in("S1")
        # ... and deactivating someone ends the sessions they had.
        await campus.execute("UPDATE people SET active = false WHERE id = 'S1'")
        response = await person.submit()
    assert response.status_code == 401
    assert await campus.fetchval("SELECT count(*) FROM daily_checkin_history") == 0


async def test_fever_or_symptom_sets_fever_watch_and_joins_the_officers_review(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    token = await add_operator(campus, "ho", "health_officer")
    async with api(fresh_db) as person:
        fever = await person.check_in("S1", temperature_c=37.3)  # at the threshold
        assert fever.json()["hold"] == "fever_watch"
        cough = await person.check_in("S2", symptoms=["cough"])
        assert cough.json()["hold"] == "fever_watch"
        fine = await person.check_in("S3", temperature_c=37.2)
        assert fine.json()["hold"] is None
        async with person.operator(token) as officer:
            review = (await officer.get("/api/health/fever-review")).json()
    assert sorted(r["person_id"] for r in review) == ["S1", "S2"]
    rows = await campus.fetch(
        "SELECT person_id, set_by, reason FROM health_history ORDER BY person_id"
    )
    assert [(r[0], r[1]) for r in rows] == [("S1", "checkin"), ("S2", "checkin")]
    assert rows[1]["reason"] == "daily check-in: cough"


async def test_a_held_person_keeps_their_hold(campus: asyncpg.Connection, fresh_db: str) -> None:
    await campus.execute(
        "INSERT INTO health_status (person_id, status, since, reason, set_by)"
        " VALUES ('S1', 'confirmed', now(), 'lab test', 'ho')"
    )
    async with api(fresh_db) as person:
        answer = await person.check_in("S1", temperature_c=38.5)
    assert answer.json()["hold"] is None
    assert await campus.fetchval("SELECT status FROM health_status WHERE person_id='S1'") == (
        "confirmed"
    )


async def test_case_contact_goes_on_the_review_list_until_an_officer_resolves_it(
    campus: asyncpg.Connection, fresh_db: str
) -> None:
    officer_token = await add_operator(campus, "ho", "health_officer")
    liaison_token = await add_operator(campus, "li", "liaison")
    async with api(fresh_db) as person:
        assert (await person.check_in("S1", case_contact=True)).json()["hold"] is None
        await person.check_in("S1", case_contact=True)  # the same day: one review
        async with person.operator(liaison_token) as liaison:
            assert (await liaison.get("/api/checkins/contact-reviews")).status_code == 403
        async with person.operator(officer_token) as officer:
            [review] = (await officer.get("/api/checkins/contact-reviews")).json()
            assert review["person_id"] == "S1" and review["resolved_at"] is None
            path = f"/api/checkins/contact-reviews/{review['id']}/resolve"
            done = await officer.post(path, json={"outcome": "tested negative"})
            assert done.status_code == 200, done.text
            assert (await officer.post(path, json={"outcome": "again"})).status_code == 409
            assert (await officer.get("/api/checkins/contact-reviews")).json() == []
            missing = "/api/checkins/contact-reviews/999/resolve"
            assert (await officer.post(missing, json={"outcome": "x"})).status_code == 404
    assert (
        await campus.fetchval(
            "SELECT count(*) FROM audit_log WHERE entity = 'checkin_contact_review'"
        )
        == 1
    )
