"""API behaviour against a real PostgreSQL: auth, errors, changes with audit, the alert stream."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest

from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect

PASSWORD = "correct horse battery"  # set for every operator in conftest.py


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_login_sets_httponly_strict_cookie_and_csrf_guards_changes(app):
    async with _client(app) as client:
        response = await client.post(
            "/api/auth/login", json={"name": "guard", "password": PASSWORD}
        )
        assert response.status_code == 200
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("cg_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        csrf = response.json()["csrf_token"]
        assert (await client.get("/api/alerts")).status_code == 200
        # A change without the CSRF header is refused; with it, it goes through.
        no_csrf = await client.post("/api/alerts/nope/acknowledge", json={"note": ""})
        assert no_csrf.status_code == 403
        with_csrf = await client.post(
            "/api/alerts/nope/acknowledge", json={"note": ""}, headers={"X-CSRF-Token": csrf}
        )
        assert with_csrf.status_code == 404
        out = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        client.cookies.clear()
        assert (await client.get("/api/alerts")).status_code == 401


async def test_login_rate_limited_per_name_and_address(app):
    async with _client(app) as client:
        for _ in range(5):
            bad = await client.post(
                "/api/auth/login", json={"name": "liaison", "password": "wrong!!"}
            )
            assert bad.status_code == 401
        blocked = await client.post(
            "/api/auth/login", json={"name": "liaison", "password": PASSWORD}
        )
        assert blocked.status_code == 429
        other = await client.post("/api/auth/login", json={"name": "admin", "password": PASSWORD})
        assert other.status_code == 200


async def test_unknown_name_and_wrong_password_look_the_same(app):
    async with _client(app) as client:
        a = await client.post("/api/auth/login", json={"name": "nobody", "password": "whatever1"})
        b = await client.post("/api/auth/login", json={"name": "guard", "password": "whatever1"})
        assert a.status_code == b.status_code == 401 and a.json() == b.json()


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/alerts", {"severity": "urgent"}, "severity"),
        ("/api/alerts", {"limit": "0"}, "limit"),
        ("/api/alerts", {"since": "yesterday"}, "since"),
        ("/api/events", {"decision": "maybe"}, "decision"),
        ("/api/people", {"offset": "-1"}, "offset"),
    ],
)
async def test_bad_input_is_422_naming_the_field(admin, path, params, field):
    response = await admin.get(path, params=params)
    assert response.status_code == 422
    assert any(field in err["loc"] for err in response.json()["detail"])


async def test_zones_show_their_capacity_rules(admin):
    zones = {z["id"]: z for z in (await admin.get("/api/zones")).json()}
    assert zones["lab-1"]["capacity"] == 10
    assert zones["lab-1"]["capacity_mode"] == "enforce"  # the default
    assert zones["lab-1"]["gathering_threshold"] is None
    one = (await admin.get("/api/zones/dorm-1")).json()
    assert (one["capacity_mode"], one["gathering_minutes"]) == ("enforce", 10)


async def test_unknown_ids_are_404(admin):
    for path in (
        "/api/doors/nope",
        "/api/devices/nope",
        "/api/zones/nope",
        "/api/people/nope",
        "/api/alerts/nope",
        "/api/grants/12345",
        "/api/zones/nope/inside",
    ):
        assert (await admin.get(path)).status_code == 404, path


async def test_health_set_and_clear_with_history_and_audit(client_for):
    officer = client_for("health_officer")
    bad = await officer.put(
        "/api/health/S001",
        json={"status": "home_isolation", "reason": "trip", "caretaker_id": "S002"},
    )
    assert bad.status_code == 422 and "caretaker_id" in str(bad.json())
    bad_status = await officer.put("/api/health/S001", json={"status": "sick", "reason": "x"})
    assert bad_status.status_code == 422 and "status" in str(bad_status.json())
    done = await officer.put(
        "/api/health/S001",
        json={
            "status": "close_contact",
            "reason": "shared a lab with a case",
            "until": "2030-01-01T00:00:00+08:00",
            "caretaker_id": "T001",
        },
    )
    assert done.status_code == 200 and done.json()["status"] == "close_contact"
    # Names beside the ids (the console shows names, ids on hover).
    assert (done.json()["person_name"], done.json()["caretaker_name"]) == ("Li Hua", "Zhang Wei")
    listed = (await officer.get("/api/health", params={"status": "close_contact"})).json()
    row = next(r for r in listed if r["person_id"] == "S001")
    assert (row["name"], row["caretaker_id"], row["caretaker_name"]) == (
        "Li Hua",
        "T001",
        "Zhang Wei",
    )
    current = (await officer.get("/api/health/S001")).json()["current"]
    assert (current["caretaker_id"], current["caretaker_name"]) == ("T001", "Zhang Wei")
    cleared = await officer.post("/api/health/S001/clear", json={"reason": "tested negative"})
    assert cleared.status_code == 200 and cleared.json()["status"] == "clear"
    assert cleared.json()["caretaker_name"] is None
    history = (await officer.get("/api/health/S001")).json()["history"]
    assert [h["status"] for h in history][-2:] == ["close_contact", "clear"]
    assert [h["caretaker_name"] for h in history][-2:] == ["Zhang Wei", None]
    audit = (await client_for("admin").get("/api/audit", params={"entity": "health_status"})).json()
    latest = audit[0]
    assert latest["operator"] == "health_officer" and latest["entity_id"] == "S001"
    assert latest["before"]["status"] == "close_contact" and latest["after"]["status"] == "clear"


async def test_alert_lifecycle_conflicts_and_history(client_for):
    guard = client_for("guard")
    ack = await guard.post("/api/alerts/a-outsider-1/acknowledge", json={"note": "on my way"})
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = await guard.post("/api/alerts/a-outsider-1/acknowledge", json={"note": "again"})
    assert again.status_code == 409
    done = await guard.post(
        "/api/alerts/a-outsider-1/resolve", json={"note": "visitor escorted out"}
    )
    assert done.json()["status"] == "resolved"
    detail = (await guard.get("/api/alerts/a-outsider-1")).json()
    assert [(h["status"], h["operator"]) for h in detail["history"]] == [
        ("open", None),
        ("acknowledged", "guard"),
        ("resolved", "guard"),
    ]
    filtered = (
        await guard.get("/api/alerts", params={"status": "resolved", "kind": "outsider"})
    ).json()
    # Other tests of this shared world add (and resolve) outsider alerts of their own.
    assert "a-outsider-1" in [a["id"] for a in filtered]
    assert all(a["kind"] == "outsider" and a["status"] == "resolved" for a in filtered)


async def test_grants_create_conflict_and_delete(admin):
    body = {"subject_org_unit": "math", "zone_id": "lab-1", "schedule": "Mon-Fri 08:00-18:00"}
    created = await admin.post("/api/grants", json=body)
    assert created.status_code == 201
    assert (await admin.post("/api/grants", json=body)).status_code == 409
    missing = await admin.post("/api/grants", json={**body, "zone_id": "nowhere"})
    assert missing.status_code == 422 and "zone_id" in str(missing.json())
    two = await admin.post("/api/grants", json={**body, "subject_kind": "staff"})
    assert two.status_code == 422
    assert (await admin.delete(f"/api/grants/{created.json()['id']}")).status_code == 204


async def test_bulk_import_takes_the_cli_formats(admin):
    csv = "id,kind,name,org_unit,card_uid\nS900,student,Chen Jing,cs-1,0A0B0C0D\n"
    done = await admin.post("/api/import", files={"file": ("people.csv", io.BytesIO(csv.encode()))})
    assert done.status_code == 200 and done.json()["sections"]["people"]["inserted"] == 1
    found = (await admin.get("/api/people", params={"q": "0a0b0c0d"})).json()
    assert [p["id"] for p in found["items"]] == ["S900"]
    bad = await admin.post(
        "/api/import", files={"file": ("x.yaml", io.BytesIO(b"doors: [{id: d}]"))}
    )
    assert bad.status_code == 422


async def test_stream_pushes_new_alerts_and_replays_missed(app, api_world):
    token = api_world.tokens["guard"]
    hub = app.state.alert_hub
    queue = hub.subscribe()
    try:
        conn = await connect(api_world.dsn)
        try:
            from datetime import UTC, datetime

            await insert_alerts(
                conn,
                [
                    Alert(
                        "a-stream-1",
                        AlertKind.DOOR_FORCED,
                        datetime.now(UTC),
                        Severity.CRITICAL,
                        "lab-1-door",
                        "lab-1",
                        "term-lab-1",
                    )
                ],
            )
        finally:
            await conn.close()
        change = await asyncio.wait_for(queue.get(), 5)
        assert change.alert.id == "a-stream-1" and change.change == "open"
    finally:
        hub.unsubscribe(queue)
    assert token


async def test_alerts_carry_the_names_of_their_zone_door_and_person(client_for):
    officer = client_for("health_officer")
    listed = (await officer.get("/api/alerts", params={"kind": "fever"})).json()
    fever = next(a for a in listed if a["id"] == "a-fever-1")
    assert (fever["person"], fever["person_name"]) == ("S001", "Li Hua")
    assert (fever["zone"], fever["zone_name"]) == ("dorm-1", "Dorm 1")
    assert fever["door"] == "dorm-1-main" and fever["door_name"] is None  # unnamed door
    one = (await officer.get("/api/alerts/a-fever-1")).json()
    assert (one["person_name"], one["zone_name"]) == ("Li Hua", "Dorm 1")


async def test_docs_are_served_from_the_app_without_a_cdn(client_for):
    guard = client_for("guard")
    page = await guard.get("/docs")
    assert page.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "<script>" not in page.text  # its start-up is a file: a strict CSP needs no hash
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert (await guard.get(f"/static/vendor/swagger-ui/{asset}")).status_code == 200
    assert (await guard.get("/static/docs.js")).status_code == 200
    assert (await guard.get("/redoc")).status_code == 404  # ReDoc would load from a CDN
