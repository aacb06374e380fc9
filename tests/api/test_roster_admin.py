"""Administrators' roster changes over HTTP: people and cards, org units, zones, doors,
devices; errors naming the field, 409s, audit entries, and the gateways' roster NOTIFY."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.store.db import connect


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _uid() -> str:
    return uuid.uuid4().hex[:8].upper()


async def _audit(admin, entity: str, entity_id: str) -> list[dict]:
    entries = (await admin.get("/api/audit", params={"entity": entity, "limit": 200})).json()
    return [e for e in entries if e["entity_id"] == entity_id]


async def test_create_update_person_with_cards_audited(admin):
    pid, card = _id("P"), _uid()
    body = {"id": pid, "kind": "student", "name": "Chen Jie", "org_unit_id": "cs-1"}
    created = await admin.post("/api/people", json={**body, "cards": [card.lower()]})
    assert created.status_code == 201, created.text
    assert created.json()["cards"] == [card] and created.json()["active"] is True
    assert (await admin.post("/api/people", json=body)).status_code == 409
    changed = await admin.patch(f"/api/people/{pid}", json={"name": "Chen Jie II"})
    assert changed.status_code == 200 and changed.json()["name"] == "Chen Jie II"
    entries = await _audit(admin, "person", pid)
    update = next(e for e in entries if e["action"] == "update")
    assert update["before"]["name"] == "Chen Jie" and update["after"]["name"] == "Chen Jie II"
    assert any(e["action"] == "create" and e["after"]["cards"] for e in entries)
    assert (await admin.get("/api/people", params={"q": card})).json()["total"] == 1


async def test_card_held_by_another_person_is_409(admin):
    pid = _id("P")
    await admin.post("/api/people", json={"id": pid, "kind": "staff", "name": "Sun Li"})
    taken = await admin.post(f"/api/people/{pid}/cards", json={"uid": "04A1B2C3"})  # S001's
    assert taken.status_code == 409 and "held by another person" in taken.json()["detail"]
    clash = await admin.post(
        "/api/people", json={"id": _id("P"), "kind": "staff", "name": "X", "cards": ["04A1B2C3"]}
    )
    assert clash.status_code == 409
    card = _uid()
    given = await admin.post(f"/api/people/{pid}/cards", json={"uid": card})
    assert given.status_code == 200 and given.json()["person_id"] == pid


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/people", {"id": "P-x", "kind": "alien", "name": "A"}, "kind"),
        ("/api/people", {"id": "P-x", "kind": "staff"}, "name"),
        ("/api/people", {"id": "P-x", "kind": "staff", "name": "A", "cards": ["XYZ"]}, "cards"),
        (
            "/api/people",
            {"id": "P-x", "kind": "staff", "name": "A", "org_unit_id": "nope"},
            "org_unit_id",
        ),
        ("/api/people/S001/cards", {"uid": "123"}, "uid"),
        ("/api/zones", {"id": "z-x", "name": "Z", "kind": "dormitory", "capacity": -1}, "capacity"),
        ("/api/doors", {"id": "d-x", "zone_id": "nope"}, "zone_id"),
        ("/api/doors", {"id": "d-x", "zone_id": "dorm-1", "direction": "up"}, "direction"),
        ("/api/devices", {"id": "v-x", "door_id": "nope", "kind": "terminal"}, "door_id"),
        (
            "/api/devices",
            {"id": "v-x", "door_id": "dorm-1-main", "kind": "terminal", "protocol": "morse"},
            "protocol",
        ),
        ("/api/org-units", {"id": "o-x", "name": "O", "parent_id": "nope"}, "parent_id"),
    ],
)
async def test_bad_writes_are_422_naming_the_field(admin, path, body, field):
    response = await admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"]), response.text


async def test_patch_errors(admin):
    assert (await admin.patch("/api/people/NOBODY", json={"name": "x"})).status_code == 404
    assert (await admin.patch("/api/zones/nope", json={"name": "x"})).status_code == 404
    nulled = await admin.patch("/api/people/S001", json={"name": None})
    assert nulled.status_code == 422 and nulled.json()["detail"][0]["loc"] == ["body", "name"]
    # An org unit may not become its own ancestor.
    cycle = await admin.patch("/api/org-units/cs", json={"parent_id": "cs-1"})
    assert cycle.status_code == 422 and cycle.json()["detail"][0]["loc"] == ["body", "parent_id"]


async def test_deactivate_person_and_revoke_card(admin):
    pid, card = _id("P"), _uid()
    await admin.post(
        "/api/people", json={"id": pid, "kind": "visitor", "name": "Zhao", "cards": [card]}
    )
    off = await admin.post(f"/api/people/{pid}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await admin.post("/api/people/NOBODY/deactivate")).status_code == 404
    revoked = await admin.post(f"/api/people/{pid}/cards/{card.lower()}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert (await admin.post(f"/api/people/S001/cards/{card}/revoke")).status_code == 404
    assert (await admin.post(f"/api/people/{pid}/cards/zz/revoke")).status_code == 422
    actions = {e["action"] for e in await _audit(admin, "card", card)}
    assert "revoke" in actions
    update = next(e for e in await _audit(admin, "person", pid) if e["action"] == "update")
    assert update["before"]["active"] is True and update["after"]["active"] is False


async def test_org_units_zones_doors_devices_create_and_update(admin):
    org, zone, door, device = _id("o"), _id("z"), _id("d"), _id("v")
    steps = [
        ("/api/org-units", {"id": org, "name": "Physics", "parent_id": "cs"}),
        ("/api/zones", {"id": zone, "name": "Lab 9", "kind": "lab", "capacity": 5}),
        ("/api/doors", {"id": door, "zone_id": zone, "requires_temperature": True}),
        (
            "/api/devices",
            {
                "id": device,
                "door_id": door,
                "kind": "card_reader",
                "transport": "serial",
                "port": "/dev/ttyUSB0",
                "protocol": "rdm6300",
            },
        ),
    ]
    for path, body in steps:
        created = await admin.post(path, json=body)
        assert created.status_code == 201, created.text
        assert (await admin.post(path, json=body)).status_code == 409
    assert (await admin.patch(f"/api/org-units/{org}", json={"parent_id": None})).json()[
        "parent_id"
    ] is None
    assert (await admin.patch(f"/api/zones/{zone}", json={"capacity": 7})).json()["capacity"] == 7
    assert (await admin.patch(f"/api/doors/{door}", json={"direction": "in"})).json()[
        "direction"
    ] == "in"
    moved = await admin.patch(f"/api/devices/{device}", json={"door_id": "dorm-1-main"})
    assert moved.json()["door_id"] == "dorm-1-main"
    assert (await admin.get(f"/api/devices/{device}")).json()["zone_id"] == "dorm-1"
    for entity, entity_id in (
        ("org_unit", org),
        ("zone", zone),
        ("door", door),
        ("device", device),
    ):
        actions = [e["action"] for e in await _audit(admin, entity, entity_id)]
        assert sorted(actions) == ["create", "update"], (entity, actions)


async def test_changes_notify_the_running_gateways(admin, api_world):
    """The roster NOTIFY the gateways reload on fires for an API change (and only once)."""
    listener = await connect(api_world.dsn)
    heard: list[str] = []
    await listener.add_listener("campusgate_roster", lambda *a: heard.append(a[3]))
    try:
        zone = _id("z")
        await admin.post("/api/zones", json={"id": zone, "name": "Gate", "kind": "gate"})
        pid = _id("P")
        await admin.post("/api/people", json={"id": pid, "kind": "staff", "name": "Q"})
        await admin.post(f"/api/people/{pid}/deactivate")
        for _ in range(50):
            if {"zones", "people"} <= set(heard):
                break
            await asyncio.sleep(0.05)
        assert {"zones", "people"} <= set(heard)
        heard.clear()
        # Patching nothing new changes nothing: no reload, no audit entry.
        await admin.patch(f"/api/zones/{zone}", json={"name": "Gate"})
        await asyncio.sleep(0.3)
        assert "zones" not in heard
        assert [e["action"] for e in await _audit(admin, "zone", zone)] == ["create"]
    finally:
        await listener.close()


async def _eventually(check, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


async def test_a_running_gateways_roster_follows_api_changes(admin, api_world):
    """The gateway's own roster state (the one doors are decided against) reloads."""
    from gateway.pipeline.roster_state import RosterState
    from gateway.store.db import create_pool

    pool = await create_pool(api_world.dsn, min_size=1, max_size=2)
    state = RosterState(pool, api_world.dsn)
    await state.start()
    try:
        pid, card = _id("P"), _uid()
        await admin.post(
            "/api/people", json={"id": pid, "kind": "student", "name": "Ma", "cards": [card]}
        )
        await _eventually(lambda: state.index.person_of_card(card) is not None)
        await admin.post(f"/api/people/{pid}/cards/{card}/revoke")
        await _eventually(lambda: state.index.card(card).revoked)
        await admin.post(f"/api/people/{pid}/deactivate")
        await _eventually(lambda: not state.index.person(pid).active)
        door = _id("d")
        await admin.post("/api/doors", json={"id": door, "zone_id": "lab-1"})
        await _eventually(lambda: state.index.door(door) is not None)
    finally:
        await state.stop()
        await pool.close()
