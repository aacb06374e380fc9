"""Occupancy, capacity modes, gatherings and the muster list, through simulated terminals."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from zones_campus import CARDS, DEVICES, outcome

from firmware_sim.fleet import Fleet
from gateway.store.alerts import open_alerts
from gateway.store.db import connect


async def passage(fleet, device: str, person: str, direction: str, celsius=None) -> str:
    terminal = fleet[device]
    eid = terminal.swipe(CARDS[person], direction=direction, celsius=celsius)
    return outcome(await terminal.decision(eid, timeout=5))


async def test_alert_mode_admits_at_capacity_and_alerts_once(gateway, fleet, alerts, api):
    mark = alerts.mark()
    assert await passage(fleet, "term-hall", "S1", "in") == "admit/ok"
    assert await passage(fleet, "term-hall", "S2", "in") == "admit/ok"
    assert alerts.matching("zone_full", since=mark) == []
    assert await passage(fleet, "term-hall", "S3", "in") == "admit/ok"  # capacity 2: over
    alert = await alerts.wait_for("zone_full", device="term-hall", since=mark)
    assert alert is not None
    assert alert["detail"]["mode"] == "alert"
    assert (alert["detail"]["occupancy"], alert["detail"]["capacity"]) == (2, 2)
    assert await passage(fleet, "term-hall", "S4", "in") == "admit/ok"
    await asyncio.sleep(0.3)
    assert len(alerts.matching("zone_full", since=mark)) == 1  # one per crossing
    assert gateway.desk.occupancy.count("hall") == 4
    # Below capacity again, then over: a second alert.
    for person in ("S1", "S2", "S3"):
        assert await passage(fleet, "term-hall", person, "out") == "admit/ok"
    assert await passage(fleet, "term-hall", "S1", "in") == "admit/ok"
    assert await passage(fleet, "term-hall", "S2", "in") == "admit/ok"
    assert await alerts.wait_for("zone_full", device="term-hall", since=mark + 1) is not None
    body = (await api["guard"].get("/api/zones/hall/occupancy")).json()
    assert body["inside"] == 3 and body["capacity_mode"] == "alert" and body["full"] is True

    # An administrator switches the hall to enforce: the gateway reloads and denies.
    response = await api["admin"].patch("/api/zones/hall", json={"capacity_mode": "enforce"})
    assert response.status_code == 200 and response.json()["capacity_mode"] == "enforce"
    for _ in range(50):
        if await passage(fleet, "term-hall", "S3", "in") == "deny/zone_full":
            break
        await passage(fleet, "term-hall", "S3", "out")
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the hall never enforced its capacity")
    bad = await api["admin"].patch("/api/zones/hall", json={"capacity_mode": "sometimes"})
    assert bad.status_code == 422
    bad = await api["admin"].patch("/api/zones/hall", json={"gathering_threshold": 0})
    assert bad.status_code == 422


async def test_enforce_mode_denies_at_capacity(gateway, fleet, alerts):
    mark = alerts.mark()
    assert await passage(fleet, "term-room", "S1", "in") == "admit/ok"
    assert await passage(fleet, "term-room", "S2", "in") == "admit/ok"
    assert await passage(fleet, "term-room", "S3", "in") == "deny/zone_full"
    alert = await alerts.wait_for("zone_full", device="term-room", since=mark)
    assert alert is not None and alert["detail"]["mode"] == "enforce"
    assert await passage(fleet, "term-room", "S1", "out") == "admit/ok"
    assert await passage(fleet, "term-room", "S3", "in") == "admit/ok"


async def test_gathering_raised_and_resolved(gateway, fleet, alerts, campus_dsn):
    mark = alerts.mark()
    assert await passage(fleet, "term-yard", "S1", "in") == "admit/ok"
    await asyncio.sleep(1.5)  # one person is no gathering
    assert alerts.matching("gathering", since=mark) == []
    assert await passage(fleet, "term-yard", "S2", "in") == "admit/ok"
    raised = await alerts.wait_for("gathering", since=mark, timeout=5)
    assert raised is not None, "no gathering alert"
    assert raised["zone"] == "yard" and raised["severity"] == "high"
    assert raised["status"] == "open" and raised["detail"]["people"] == 2
    await asyncio.sleep(1.5)
    assert len(alerts.matching("gathering", since=mark)) == 1  # raised once, not every tick
    assert await passage(fleet, "term-yard", "S1", "out") == "admit/ok"
    for _ in range(50):
        updates = alerts.matching("gathering", since=mark)
        if any(a["id"] == raised["id"] and a["status"] == "resolved" for a in updates):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the gathering alert was not resolved")
    conn = await connect(campus_dsn)
    try:
        for _ in range(50):
            if not await open_alerts(conn, "gathering"):
                break
            await asyncio.sleep(0.1)
        assert await open_alerts(conn, "gathering") == []
    finally:
        await conn.close()


async def test_muster_list_after_ins_and_outs(gateway, fleet, api):
    steps = [
        ("term-office", "S1", "in"),
        ("term-office-side", "S2", "in"),
        ("term-office", "S3", "in"),
        ("term-office", "S2", "out"),
        ("term-office-side", "S4", "out"),  # never seen entering: changes nothing
        ("term-office-side", "T1", "in"),
        ("term-office", "S3", "out"),
        ("term-office-side", "S3", "in"),  # back in by the other door
        ("term-office", "S1", "in"),  # a missed exit: still one person
    ]
    for device, person, direction in steps:
        assert await passage(fleet, device, person, direction) == "admit/ok"
    expected = {"S1": "office-door", "T1": "office-side", "S3": "office-side"}
    muster = (await api["guard"].get("/api/zones/office/muster")).json()
    assert {m["person_id"]: m["door_id"] for m in muster} == expected
    assert [m["person_id"] for m in muster] == ["T1", "S3", "S1"]  # by entry time
    # The doors' "who is inside" is the muster list, not a second idea of presence.
    inside = (await api["guard"].get("/api/zones/office/inside")).json()
    assert [(m["person_id"], m["door_id"]) for m in inside] == [
        (m["person_id"], m["door_id"]) for m in muster
    ]
    li = next(m for m in muster if m["person_id"] == "S1")
    assert (li["name"], li["org_unit_id"], li["org_unit_name"]) == (
        "Li Hua",
        "cs",
        "Computer Science",
    )
    assert li["since"] and li["kind"] == "student"
    occupancy = (await api["health_officer"].get("/api/zones/office/occupancy")).json()
    assert occupancy["inside"] == 3 == gateway.desk.occupancy.count("office")
    every = (await api["admin"].get("/api/occupancy")).json()
    assert {z["zone_id"]: z["inside"] for z in every}["office"] == 3

    response = await api["guard"].get("/api/zones/office/muster", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert {r["person_id"]: r["door_id"] for r in rows} == expected
    assert (await api["liaison"].get("/api/zones/office/muster")).status_code == 403
    assert (await api["guard"].get("/api/zones/nope/muster")).status_code == 404
    assert (await api["guard"].get("/api/zones/nope/occupancy")).status_code == 404
    bad = await api["guard"].get("/api/zones/office/muster", params={"format": "xml"})
    assert bad.status_code == 422


async def test_occupancy_survives_a_restart(start_gateway, mqtt_url, prefix, api):
    gateway = await start_gateway()
    try:
        async with Fleet(mqtt_url, DEVICES, prefix=prefix) as fleet:
            assert await passage(fleet, "term-room", "S1", "in") == "admit/ok"
            assert await passage(fleet, "term-room", "S2", "in") == "admit/ok"
            assert await passage(fleet, "term-office", "S3", "in") == "admit/ok"
            assert await passage(fleet, "term-office", "S3", "out") == "admit/ok"
    finally:
        await gateway.stop()
    gateway = await start_gateway()
    try:
        assert gateway.desk.occupancy.count("room") == 2
        assert gateway.desk.occupancy.count("office") == 0
        async with Fleet(mqtt_url, DEVICES, prefix=prefix) as fleet:
            assert await passage(fleet, "term-room", "S3", "in") == "deny/zone_full"
            assert await passage(fleet, "term-room", "S1", "out") == "admit/ok"
            assert await passage(fleet, "term-room", "S3", "in") == "admit/ok"
    finally:
        await gateway.stop()
    muster = (await api["guard"].get("/api/zones/room/muster")).json()
    assert sorted(m["person_id"] for m in muster) == ["S2", "S3"]
