"""The permission matrix, route by route and role by role (bearer tokens)."""

from __future__ import annotations

import pytest

# (method, path, body, roles allowed); every other role gets 403, nobody gets 5xx.
ROUTES = [
    ("GET", "/api/org-units", None, {"admin", "guard", "health_officer", "liaison"}),
    ("GET", "/api/zones", None, {"admin", "guard", "health_officer", "liaison"}),
    ("GET", "/api/doors", None, {"admin", "guard"}),
    ("GET", "/api/devices", None, {"admin", "guard"}),
    ("GET", "/api/occupancy", None, {"admin", "guard", "health_officer"}),  # READ_MUSTER
    ("GET", "/api/zones/dorm-1/inside", None, {"admin", "guard"}),
    ("GET", "/api/alerts", None, {"admin", "guard", "health_officer", "liaison"}),
    # 404 for health officers (not a health alert) and liaisons (about nobody of theirs)
    ("GET", "/api/alerts/a-outsider-1", None, {"admin", "guard"}),
    ("POST", "/api/alerts/nope/acknowledge", {"note": "x"}, {"admin", "guard"}),  # 404 if allowed
    ("GET", "/api/reports/today", None, {"admin", "guard", "health_officer", "liaison"}),
    ("GET", "/api/people?q=Li", None, {"admin", "guard", "health_officer", "liaison"}),
    ("GET", "/api/health", None, {"admin", "health_officer"}),
    ("GET", "/api/health/S002", None, {"admin", "health_officer"}),
    ("PUT", "/api/health/NOBODY", {"status": "clear", "reason": "r"}, {"admin", "health_officer"}),
    ("GET", "/api/events", None, {"admin", "guard", "liaison"}),
    ("GET", "/api/grants", None, {"admin"}),
    ("DELETE", "/api/grants/999999", None, {"admin"}),
    ("GET", "/api/audit", None, {"admin"}),
    # Roster changes: administrators only (404 / 409 when allowed: nothing really changes).
    ("POST", "/api/org-units", {"id": "cs", "name": "CS"}, {"admin"}),
    ("PATCH", "/api/org-units/nope", {"name": "x"}, {"admin"}),
    ("POST", "/api/zones", {"id": "dorm-1", "name": "D", "kind": "dormitory"}, {"admin"}),
    ("PATCH", "/api/zones/nope", {"name": "x"}, {"admin"}),
    ("POST", "/api/doors", {"id": "dorm-1-main", "zone_id": "dorm-1"}, {"admin"}),
    ("PATCH", "/api/doors/nope", {"name": "x"}, {"admin"}),
    (
        "POST",
        "/api/devices",
        {"id": "term-dorm-1", "door_id": "dorm-1-main", "kind": "terminal"},
        {"admin"},
    ),
    ("PATCH", "/api/devices/nope", {"port": "x"}, {"admin"}),
    ("POST", "/api/people", {"id": "S001", "kind": "student", "name": "Li Hua"}, {"admin"}),
    ("PATCH", "/api/people/NOBODY", {"name": "x"}, {"admin"}),
    ("POST", "/api/people/NOBODY/deactivate", None, {"admin"}),
    ("POST", "/api/people/NOBODY/cards", {"uid": "0A0B0C0D"}, {"admin"}),
    ("POST", "/api/people/NOBODY/cards/0A0B0C0D/revoke", None, {"admin"}),
    # Visitor passes: liaisons (their unit's) and admins decide.
    ("GET", "/api/visitor-passes?status=pending", None, {"admin", "liaison"}),
    ("GET", "/api/visitor-passes/999999", None, {"admin", "liaison"}),
    ("POST", "/api/visitor-passes/999999/approve", {}, {"admin", "liaison"}),
    ("POST", "/api/visitor-passes/999999/refuse", {"note": "no"}, {"admin", "liaison"}),
    ("POST", "/api/visitor-passes/999999/revoke", {}, {"admin", "liaison"}),
    ("GET", "/api/visitor-passes/999999/qr", None, {"admin", "liaison"}),
]
ROLES = ("admin", "guard", "health_officer", "liaison")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_permission_matrix(client_for, role, method, path, body, allowed):
    client = client_for(role)
    response = await client.request(method, path, json=body)
    if role in allowed:
        assert response.status_code in (200, 201, 204, 404, 409), response.text
        if path == "/api/alerts/a-outsider-1":
            assert response.status_code == 200
    elif path == "/api/alerts/a-outsider-1" and role in ("health_officer", "liaison"):
        assert response.status_code == 404  # outsider alerts are not theirs to see
    else:
        assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_anonymous_is_401(client_for, method, path, body, allowed):
    response = await client_for(None).request(method, path, json=body)
    assert response.status_code == 401


async def test_guard_sees_health_hold_but_no_reason(client_for):
    guard = (await client_for("guard").get("/api/people/S002")).json()
    assert guard["health_hold"] is True
    assert "health_reason" not in guard and "health_status" not in guard
    officer = (await client_for("health_officer").get("/api/people/S002")).json()
    assert officer["health_reason"] == "returned from an epidemic area"


async def test_liaison_sees_only_own_org_unit_and_below(client_for):
    liaison = client_for("liaison")
    found = (await liaison.get("/api/people", params={"limit": 50})).json()
    ids = {p["id"] for p in found["items"]}
    assert {"S001", "T001"} <= ids and "S002" not in ids  # cs and cs-1, not math
    assert (await liaison.get("/api/people/S002")).status_code == 404
    assert (await liaison.get("/api/people/S001")).status_code == 200


async def test_health_officer_sees_health_and_crowd_alerts(client_for, api_world):
    from datetime import UTC, datetime

    from gateway.domain.alerts import Alert, AlertKind, Severity
    from gateway.store.alerts import insert_alerts
    from gateway.store.db import connect

    now = datetime.now(UTC)
    made = [
        # lab-1: an open gathering is one per zone (alerts_open_once), and the stream's
        # tests leave one open at dorm-1 in this shared world.
        Alert("ho-gathering-1", AlertKind.GATHERING, now, Severity.HIGH, zone="lab-1"),
        Alert("ho-zone-full-1", AlertKind.ZONE_FULL, now, Severity.MEDIUM, zone="lab-1"),
        Alert("ho-tailgating-1", AlertKind.TAILGATING, now, Severity.MEDIUM, zone="lab-1"),
    ]
    conn = await connect(api_world.dsn)
    try:
        await insert_alerts(conn, made)
    finally:
        await conn.close()
    officer = client_for("health_officer")
    found = (await officer.get("/api/alerts", params={"limit": 1000})).json()
    kinds = {a["kind"] for a in found}
    # Gatherings and full zones bear on an epidemic; door trouble and outsiders do not.
    assert {"fever", "gathering", "zone_full"} <= kinds
    assert kinds <= {"fever", "isolation_breach", "temperature_invalid", "gathering", "zone_full"}
    assert (await officer.get("/api/alerts/ho-gathering-1")).status_code == 200
    assert (await officer.get("/api/alerts/ho-zone-full-1")).status_code == 200
    assert (await officer.get("/api/alerts/ho-tailgating-1")).status_code == 404
    only = await officer.get("/api/alerts", params=[("kind", "gathering"), ("kind", "outsider")])
    assert {a["kind"] for a in only.json()} == {"gathering"}


async def test_liaison_sees_only_non_health_alerts_about_own_people(client_for, api_world):
    from datetime import UTC, datetime

    from gateway.domain.alerts import Alert, AlertKind, Severity
    from gateway.store.alerts import insert_alerts
    from gateway.store.db import connect

    now = datetime.now(UTC)
    made = [
        Alert("p-unauth-S001", AlertKind.UNAUTHORIZED, now, Severity.MEDIUM, person="S001"),
        Alert("p-unauth-S002", AlertKind.UNAUTHORIZED, now, Severity.MEDIUM, person="S002"),
        Alert("p-fever-S001", AlertKind.FEVER, now, Severity.CRITICAL, person="S001"),
    ]
    conn = await connect(api_world.dsn)
    try:
        await insert_alerts(conn, made)
    finally:
        await conn.close()
    liaison = client_for("liaison")
    ids = {a["id"] for a in (await liaison.get("/api/alerts", params={"limit": 1000})).json()}
    assert "p-unauth-S001" in ids
    assert not ids & {"p-unauth-S002", "p-fever-S001", "a-outsider-1", "a-fever-1"}
    assert (await liaison.get("/api/alerts/p-unauth-S001")).status_code == 200
    assert (await liaison.get("/api/alerts/p-unauth-S002")).status_code == 404
    assert (await liaison.get("/api/alerts/p-fever-S001")).status_code == 404
    step = await liaison.post("/api/alerts/p-unauth-S001/acknowledge", json={"note": ""})
    assert step.status_code == 403
