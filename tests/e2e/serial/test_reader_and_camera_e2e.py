"""An OSDP reader and a thermal camera at one dormitory door, through the gateway and back.

The issue's end-to-end case: a serial reader plus a camera, for admit, deny,
fever and tailgating, with the decision shown on the reader (LED, buzzer).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import osdp
import pytest

from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import AlertWatch
from firmware_sim.hardware import one_person, two_people
from firmware_sim.pty_card_readers import OsdpReader, PtyPort
from firmware_sim.thermal_camera import SimThermalCamera
from gateway.pipeline import serial_reader_pool
from gateway.pipeline import thermal_frames as gateway_thermal
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")
KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
WINDOW_S = 2.0
RESIDENTS = ["04A1B2C3", "04A1B2C4", "04A1B2C5", "04A1B2C6"]


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def dorm_door(tmp_path, database_factory, mqtt_url, monkeypatch):
    port = PtyPort(tmp_path / "tty-osdp")
    manifest = {
        "org_units": [{"id": "cs", "name": "CS"}],
        "zones": [{"id": "dorm", "name": "Dormitory", "kind": "dormitory"}],
        "doors": [{"id": "dorm-main", "zone": "dorm", "direction": "in", "requires_temperature": True}],
        "devices": [
            {"id": "rdr-dorm", "door": "dorm-main", "kind": "card_reader", "transport": "serial",
             "port": str(port.path), "protocol": "osdp"},
            {"id": "cam-dorm", "door": "dorm-main", "kind": "thermal_camera", "transport": "mqtt"},
        ],
        "people": [
            {"id": f"S{i}", "kind": "student", "name": f"Resident {i}", "org_unit": "cs", "cards": [card]}
            for i, card in enumerate(RESIDENTS)
        ],
        "grants": [{"subject": {"org_unit": "cs"}, "zone": "dorm"}],
    }  # fmt: skip
    dsn = database_factory("dorm")
    await apply_migrations(dsn)
    path = tmp_path / "dorm.json"
    path.write_text(json.dumps(manifest))
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ)
    finally:
        await conn.close()
    osdp_keys = json.dumps({"rdr-dorm": KEY})
    monkeypatch.setattr(serial_reader_pool, "OFFLINE_AFTER_S", 0.5)
    reader = OsdpReader(port, scbk=bytes.fromhex(KEY))
    reader.start()
    prefix = f"t{secrets.token_hex(4)}"
    gateway = Gateway(
        GatewayConfig(
            database_url=dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=WINDOW_S),
            client_id=f"gw-{prefix}",
            osdp_keys=osdp_keys,
        )
    )
    await gateway.start()
    camera = SimThermalCamera(mqtt_url, "cam-dorm", prefix=prefix)
    await camera.start()
    alerts = AlertWatch(mqtt_url, prefix=prefix)
    await alerts.start()
    try:
        await until(lambda: reader.online and reader.secure, timeout=20)
        yield SimpleNamespace(gateway=gateway, reader=reader, camera=camera, alerts=alerts)
    finally:
        await alerts.stop()
        await camera.stop()
        await gateway.stop()
        reader.stop()
        port.unplug()


def leds_since(reader: OsdpReader, since: int) -> list:
    return [
        c["on_color"] for c in reader.snapshot()[since:] if c.get("command") == osdp.Command.LED
    ]


def final_led(reader: OsdpReader, since: int):
    """The last LED colour after `since` that is not the amber of `pending`."""
    colours = [c for c in leds_since(reader, since) if c != osdp.CommandLEDColor.Amber]
    return colours[-1] if colours else None


async def test_admit_with_a_normal_face(dorm_door):
    reader, camera = dorm_door.reader, dorm_door.camera
    since = len(reader.snapshot())
    reader.present_uid(RESIDENTS[0])
    await until(lambda: osdp.CommandLEDColor.Amber in leds_since(reader, since))  # pending: measure
    camera.show(one_person(36.6, seed=1))
    await until(lambda: final_led(reader, since) == osdp.CommandLEDColor.Green)

    def sent(command) -> bool:
        return any(c.get("command") == command for c in reader.snapshot()[since:])

    await until(lambda: sent(osdp.Command.Buzzer) and sent(osdp.Command.Output))  # beep, lock relay


async def test_deny_an_unknown_card(dorm_door):
    reader, alerts = dorm_door.reader, dorm_door.alerts
    since = len(reader.snapshot())
    reader.present_uid("DEADBEEF")
    await until(lambda: final_led(reader, since) == osdp.CommandLEDColor.Red)
    assert await alerts.wait_for("outsider", device="rdr-dorm") is not None


async def test_fever_seen_by_the_camera(dorm_door):
    reader, camera, alerts = dorm_door.reader, dorm_door.camera, dorm_door.alerts
    since = len(reader.snapshot())
    camera.show(one_person(38.5, seed=2))  # the frame first, then the card
    await asyncio.sleep(0.3)
    reader.present_uid(RESIDENTS[1])
    await until(lambda: final_led(reader, since) == osdp.CommandLEDColor.Red)
    alert = await alerts.wait_for("fever", device="rdr-dorm")
    assert alert is not None and alert["person"] == "S1"


async def test_tailgating_two_people_one_card(dorm_door):
    reader, camera, alerts = dorm_door.reader, dorm_door.camera, dorm_door.alerts
    since = len(reader.snapshot())
    reader.present_uid(RESIDENTS[2])
    await until(lambda: osdp.CommandLEDColor.Amber in leds_since(reader, since))
    camera.show(two_people(seed=3))
    await until(lambda: final_led(reader, since) == osdp.CommandLEDColor.Green)
    alert = await alerts.wait_for(
        "tailgating", device="cam-dorm", timeout=WINDOW_S * 2 + gateway_thermal.TAILGATE_SLACK_S + 5
    )
    assert alert is not None and alert["door"] == "dorm-main"
