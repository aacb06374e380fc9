"""Response levels at real doors: set through the API, applied by a running gateway."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from zones_campus import CARDS, outcome

from gateway.store.db import connect


async def passage(fleet, device: str, person: str, direction: str = "in", celsius=None) -> str:
    terminal = fleet[device]
    eid = terminal.swipe(CARDS[person], direction=direction, celsius=celsius)
    return outcome(await terminal.decision(eid, timeout=5))


async def set_level(api, level, zones=None, note="", role="health_officer") -> dict:
    response = await api[role].put(
        "/api/levels", json={"level": level, "zones": zones, "note": note}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def until(check, timeout: float = 5.0) -> float:
    """Poll `check` (async, returns bool) until true; the seconds it took, or fail."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await check():
            return time.perf_counter() - started
        await asyncio.sleep(0.02)
    pytest.fail(f"not true within {timeout} s")


async def test_lockdown_set_at_the_api_denies_a_visitor_within_a_second(gateway, fleet, api):
    assert await passage(fleet, "term-office", "V1") == "admit/ok"
    assert await passage(fleet, "term-office", "V1", "out") == "admit/ok"
    full_reloads = gateway.roster.reloads
    started = time.perf_counter()
    await set_level(api, "lockdown", note="cluster in building 3")
    put_s = time.perf_counter() - started

    async def visitor_denied() -> bool:
        return await passage(fleet, "term-office", "V1") == "deny/not_authorized"

    delay = await until(visitor_denied)
    total = put_s + delay
    print(
        f"\nlevel change to door: PUT took {put_s * 1000:.0f} ms, first denial "
        f"{delay * 1000:.0f} ms later, {total * 1000:.0f} ms in all"
    )
    assert gateway.roster.reloads == full_reloads  # levels only: no whole-roster reload
    # Staff are not barred; a level back to normal lets the visitor in again.
    assert await passage(fleet, "term-office", "T1", celsius=36.5) == "admit/ok"
    await set_level(api, "normal")

    async def visitor_admitted() -> bool:
        if await passage(fleet, "term-office", "V1") == "admit/ok":
            await passage(fleet, "term-office", "V1", "out")
            return True
        return False

    await until(visitor_admitted)


async def test_each_lockdown_rule_at_a_real_door(gateway, fleet, api):
    await set_level(api, "lockdown")
    await until(lambda: _level_in_force(gateway, "lab", "lockdown"))
    lab = fleet["term-lab"]
    # Temperature at every door: the lab door does not require one itself.
    eid = lab.swipe(CARDS["S1"], direction="in")
    pending = await lab.wait_pending(eid, timeout=5)
    assert pending is not None and outcome(pending) == "pending/temperature_required"
    lab.measure(36.6)
    assert outcome(await lab.decision(eid, timeout=5)) == "admit/ok"
    # Labs only for people named in a grant: S2 has only the org unit's grant.
    assert await passage(fleet, "term-lab", "S2", celsius=36.6) == "deny/not_authorized"
    # Capacity scaled: 4 x 0.5 = 2.
    assert await passage(fleet, "term-lab", "S3", celsius=36.6) == "admit/ok"
    assert await passage(fleet, "term-lab", "T1", celsius=36.6) == "deny/zone_full"
    # Visitors barred everywhere.
    assert await passage(fleet, "term-office", "V1", celsius=36.6) == "deny/not_authorized"
    # Leaving needs no temperature.
    assert await passage(fleet, "term-lab", "S3", "out") == "admit/ok"
    assert await passage(fleet, "term-lab", "T1", celsius=36.6) == "admit/ok"


async def _level_in_force(gateway, zone: str, level: str) -> bool:
    return level in gateway.roster.index.zone_rules(zone).levels


async def test_a_zone_level_applies_to_that_zone_only(gateway, fleet, api):
    await set_level(api, "elevated", zones=["room"], note="exam week")
    await until(lambda: _level_in_force(gateway, "room", "elevated"))
    room = fleet["term-room"]
    eid = room.swipe(CARDS["S1"], direction="in")
    assert outcome(await room.wait_pending(eid, timeout=5)) == "pending/temperature_required"
    room.measure(38.2)
    assert outcome(await room.decision(eid, timeout=5)) == "deny/fever"
    # Elsewhere no temperature is asked for.
    assert await passage(fleet, "term-office", "S2") == "admit/ok"
    # Cleared: the room is back to the campus level.
    await set_level(api, None, zones=["room"], note="exams over")
    await until(lambda: _not_in_force(gateway, "room", "elevated"))
    assert await passage(fleet, "term-room", "S3") == "admit/ok"


async def _not_in_force(gateway, zone: str, level: str) -> bool:
    return level not in gateway.roster.index.zone_rules(zone).levels


async def test_level_history_audit_and_banner_data(api, campus_dsn):
    await set_level(api, "elevated", note="first cases", role="admin")
    await set_level(api, "lockdown", zones=["lab", "office"], note="lab cluster")
    await set_level(api, "lockdown", zones=["lab"])  # no change: not logged again
    body = await set_level(api, None, zones=["office"], note="office cleaned")
    assert body["campus"]["level"] == "elevated"
    assert [(z["zone_id"], z["level"]) for z in body["zones"]] == [("lab", "lockdown")]

    history = (await api["liaison"].get("/api/levels/history")).json()  # everyone reads it
    assert [(h["zone_id"], h["from_level"], h["to_level"], h["changed_by"]) for h in history] == [
        ("office", "lockdown", None, "health_officer"),
        ("office", None, "lockdown", "health_officer"),
        ("lab", None, "lockdown", "health_officer"),
        (None, "normal", "elevated", "admin"),
    ]
    assert history[-1]["note"] == "first cases" and history[-1]["changed_at"]
    only_lab = (await api["guard"].get("/api/levels/history", params={"zone": "lab"})).json()
    assert len(only_lab) == 1
    current = (await api["liaison"].get("/api/levels")).json()
    assert current["campus"]["level"] == "elevated"
    assert [d["name"] for d in current["definitions"]] == ["normal", "elevated", "lockdown"]

    conn = await connect(campus_dsn)
    try:
        audit = await conn.fetch(
            "SELECT operator, entity_id, before, after FROM audit_log"
            " WHERE entity = 'response_level' ORDER BY id"
        )
        assert [(a["operator"], a["entity_id"]) for a in audit] == [
            ("admin", "campus"),
            ("health_officer", "lab"),
            ("health_officer", "office"),
            ("health_officer", "office"),
        ]
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE response_level_changes SET note = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM response_level_changes")
    finally:
        await conn.close()


async def test_level_api_refuses_bad_input_and_roles(api):
    cases = [
        ("guard", {"level": "lockdown"}, 403),
        ("liaison", {"level": "lockdown"}, 403),
        ("health_officer", {"level": "panic"}, 422),
        ("health_officer", {"level": "lockdown", "zones": ["nowhere"]}, 422),
        ("health_officer", {"level": "lockdown", "zones": []}, 422),
        ("health_officer", {"level": None}, 422),  # the campus level cannot be cleared
        ("health_officer", {"level": "Lock Down"}, 422),
        ("health_officer", {"level": "lockdown", "note": "x" * 501}, 422),
        ("health_officer", {"level": "lockdown", "extra": 1}, 422),
    ]
    for role, body, status in cases:
        response = await api[role].put("/api/levels", json=body)
        assert response.status_code == status, (role, body, response.text)
    assert (await api["guard"].get("/api/levels")).json()["campus"]["level"] == "normal"


async def test_admins_define_levels(gateway, fleet, api):
    definition = {
        "rank": 3,
        "title_zh": "考试周",
        "title_en": "Exam week",
        "description": "Visitors barred.",
        "bar_visitors": True,
        "capacity_factor": 0.7,
    }
    assert (
        await api["health_officer"].put("/api/levels/definitions/exam", json=definition)
    ).status_code == 403
    response = await api["admin"].put("/api/levels/definitions/exam", json=definition)
    assert response.status_code == 200, response.text
    assert response.json()["capacity_factor"] == 0.7 and response.json()["updated_by"] == "admin"
    for bad in (
        {**definition, "capacity_factor": 0},
        {**definition, "capacity_factor": 1.5},
        {**definition, "title_en": ""},
    ):
        assert (await api["admin"].put("/api/levels/definitions/exam", json=bad)).status_code == 422
    assert (
        await api["admin"].put("/api/levels/definitions/Bad%20Name", json=definition)
    ).status_code == 422
    await set_level(api, "exam", zones=["office"])
    await until(lambda: _level_in_force(gateway, "office", "exam"))
    assert await passage(fleet, "term-office", "V1") == "deny/not_authorized"
    # Editing the definition in force reaches the doors too.
    response = await api["admin"].put(
        "/api/levels/definitions/exam", json={**definition, "bar_visitors": False}
    )
    assert response.status_code == 200

    async def visitor_admitted() -> bool:
        return await passage(fleet, "term-office", "V1") == "admit/ok"

    await until(visitor_admitted)
