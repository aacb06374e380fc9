"""Thermal cameras end to end: simulated camera + terminal -> Mosquitto -> gateway -> decisions and alerts."""

from __future__ import annotations

import asyncio
import threading
from zoneinfo import ZoneInfo

import pytest

from devices.codecs import thermal_estimator as estimator
from firmware_sim.campus import dump_manifest
from firmware_sim.terminal import SimTerminal
from firmware_sim.thermal_camera import SimThermalCamera, random_scene
from gateway.pipeline import thermal_frames as gateway_thermal
from gateway.services.importer import import_file
from gateway.store.alerts import get_alert
from gateway.store.db import connect

TZ = ZoneInfo("Asia/Shanghai")
THERMAL_DOOR = {
    "zones": [{"id": "thermal-hall", "name": "Thermal hall", "kind": "other"}],
    "doors": [
        {
            "id": "thermal-door",
            "zone": "thermal-hall",
            "direction": "in",
            "requires_temperature": True,
        }
    ],
    "devices": [
        {"id": "term-thermal", "door": "thermal-door", "kind": "terminal", "transport": "mqtt"},
        {
            "id": "cam-thermal",
            "door": "thermal-door",
            "kind": "thermal_camera",
            "transport": "mqtt",
        },
    ],
    "grants": [{"subject": {"kind": "staff"}, "zone": "thermal-hall"}],
}


@pytest.fixture(scope="session")
async def thermal_door(campus_dsn, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("thermal") / "thermal.yaml"
    dump_manifest(THERMAL_DOOR, path)
    conn = await connect(campus_dsn)
    try:
        await import_file(conn, path, tz=TZ)
    finally:
        await conn.close()
    return "thermal-door"


@pytest.fixture
async def door_devices(thermal_door, gateway, mqtt_url, prefix):
    terminal = SimTerminal(mqtt_url, "term-thermal", prefix=prefix)
    camera = SimThermalCamera(mqtt_url, "cam-thermal", prefix=prefix)
    async with terminal, camera:
        yield terminal, camera


@pytest.fixture
def staff_cards(campus):
    people = [p for p in campus.facts.people if p.kind == "staff" and p.active and not p.isolated]
    return [p.cards[0] for p in people if p.cards]


def outcome(decision: dict) -> str:
    return f"{decision['decision']}/{decision['reason']}"


async def test_a_normal_face_admits(door_devices, staff_cards, alerts):
    terminal, camera = door_devices
    eid = terminal.swipe(staff_cards[0])
    assert await terminal.wait_pending(eid) is not None
    camera.show(random_scene(21, temperatures=[36.6]))
    assert outcome(await terminal.decision(eid)) == "admit/ok"
    await asyncio.sleep(2.0 + gateway_thermal.TAILGATE_SLACK_S + 0.5)
    assert alerts.matching("tailgating", device="cam-thermal") == []


async def test_the_frame_may_come_before_the_card(door_devices, staff_cards):
    terminal, camera = door_devices
    camera.show(random_scene(22, temperatures=[36.8]))
    await asyncio.sleep(0.3)
    eid = terminal.swipe(staff_cards[1])
    assert outcome(await terminal.decision(eid)) == "admit/ok"


async def test_a_fevered_face_is_denied_with_an_alert(
    door_devices, staff_cards, alerts, campus_dsn
):
    terminal, camera = door_devices
    eid = terminal.swipe(staff_cards[2])
    camera.show(random_scene(23, temperatures=[38.5]))
    assert outcome(await terminal.decision(eid)) == "deny/fever"
    alert = await alerts.wait_for("fever", device="term-thermal")
    assert alert is not None and "celsius" not in alert["detail"]  # not on the broker
    conn = await connect(campus_dsn)
    try:
        stored = await get_alert(conn, alert["id"])
    finally:
        await conn.close()
    assert stored is not None and abs(stored.detail["celsius"] - 38.5) <= 0.3


async def test_two_people_one_admit_is_tailgating(door_devices, staff_cards, alerts):
    terminal, camera = door_devices
    eid = terminal.swipe(staff_cards[3])
    camera.show(random_scene(24, temperatures=[36.5, 36.7]))
    assert outcome(await terminal.decision(eid)) == "admit/ok"
    alert = await alerts.wait_for("tailgating", device="cam-thermal", timeout=10)
    assert alert is not None and alert["door"] == "thermal-door"
    assert alert["detail"] == {"people": 2, "admitted": 1, "window_s": 2.0}


async def test_a_card_is_decided_while_a_frame_is_being_read(
    door_devices, staff_cards, campus, fleet, monkeypatch
):
    """The frame's estimate blocks on a gate; a card at another door is decided meanwhile."""
    started, release = threading.Event(), threading.Event()
    real = estimator.estimate_payload
    finished = []

    def slow(*args):
        started.set()
        release.wait(30)
        result = real(*args)
        finished.append(result)
        return result

    monkeypatch.setattr(gateway_thermal, "estimate_payload", slow)
    terminal, camera = door_devices
    eid = terminal.swipe(staff_cards[4])
    camera.show(random_scene(25, temperatures=[36.6]))
    for _ in range(200):
        if started.is_set():
            break
        await asyncio.sleep(0.02)
    assert started.is_set(), "the frame never reached the estimator"
    gate = fleet[campus.facts.gate_device]
    other = gate.swipe(campus.facts.resident_cards[0])
    assert outcome(await gate.decision(other)) == "admit/ok"
    assert finished == [], "the card waited for the frame"
    release.set()
    assert outcome(await terminal.decision(eid)) == "admit/ok"
    assert len(finished) == 1
