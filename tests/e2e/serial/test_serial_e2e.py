"""Serial readers at doors end to end: pty simulator -> gateway -> decision -> reader feedback."""

from __future__ import annotations

import asyncio
import json
import secrets
from zoneinfo import ZoneInfo

import osdp
import pytest

from devices.transports.mqtt import BrokerAddress
from firmware_sim.pty_card_readers import OsdpReader, PtyPort, Rdm6300Reader, WiegandConverter
from gateway.domain.alerts import AlertKind
from gateway.pipeline import serial_reader_pool
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.store import alerts as alert_store
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")
KEY = "00112233445566778899AABBCCDDEEFF"
EM_CARD = "0100073A8D"  # RDM6300 reads the EM4100 card's 5 bytes
WIEGAND_CARD = "007BB26E"  # facility 123, card 45678
MIFARE_CARD = "04A1B2C3"  # a 4-byte UID reported by the OSDP reader


async def until(predicate, timeout: float = 8.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def serial_campus(tmp_path, database_factory, mqtt_url, monkeypatch):
    """A lab with an RDM6300, a Wiegand converter and an OSDP reader on pseudo-terminals."""
    ports = {name: PtyPort(tmp_path / f"tty-{name}") for name in ("rdm6300", "wiegand", "osdp")}
    manifest = {
        "org_units": [{"id": "cs", "name": "CS"}],
        "zones": [{"id": "lab", "name": "Lab", "kind": "lab"}],
        "doors": [{"id": "lab-door", "zone": "lab", "direction": "in"}],
        "devices": [
            {
                "id": f"rdr-{name}",
                "door": "lab-door",
                "kind": "card_reader",
                "transport": "serial",
                "port": str(port.path),
                "protocol": name,
                "baud": 9600,
            }
            for name, port in ports.items()
        ],
        "people": [
            {
                "id": "S1",
                "kind": "student",
                "name": "Li Hua",
                "org_unit": "cs",
                "cards": [EM_CARD, WIEGAND_CARD, MIFARE_CARD],
            }
        ],
        "grants": [{"subject": {"org_unit": "cs"}, "zone": "lab"}],
    }
    dsn = database_factory("serial")
    await apply_migrations(dsn)
    path = tmp_path / "campus.json"
    path.write_text(json.dumps(manifest))
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ)
    finally:
        await conn.close()
    osdp_keys = json.dumps({"rdr-osdp": KEY})
    monkeypatch.setattr(serial_reader_pool, "OFFLINE_AFTER_S", 0.5)
    osdp_sim = OsdpReader(ports["osdp"], scbk=bytes.fromhex(KEY))
    osdp_sim.start()
    prefix = f"t{secrets.token_hex(4)}"
    gateway = Gateway(
        GatewayConfig(
            database_url=dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
            client_id=f"gw-{prefix}",
            osdp_keys=osdp_keys,
        )
    )
    await gateway.start()
    try:
        yield gateway, ports, osdp_sim, dsn
    finally:
        await gateway.stop()
        osdp_sim.stop()
        for port in ports.values():
            port.unplug()


def feedback(gateway: Gateway, device_id: str) -> list[str]:
    reader = gateway.serial.reader(device_id)
    return [f"{d.verdict.value}/{d.reason.value}" for d in reader.feedback_log]


async def test_rdm6300_admit_and_deny(serial_campus):
    gateway, ports, _, _ = serial_campus
    reader = Rdm6300Reader(ports["rdm6300"])
    await until(lambda: gateway.serial.reader("rdr-rdm6300").link.connected)
    reader.present(EM_CARD)
    await until(lambda: feedback(gateway, "rdr-rdm6300") == ["admit/ok"])
    reader.present("FFEEDDCCBB")
    await until(lambda: feedback(gateway, "rdr-rdm6300") == ["admit/ok", "deny/unknown_card"])


async def test_wiegand_garbage_then_card(serial_campus):
    gateway, ports, _, _ = serial_campus
    converter = WiegandConverter(ports["wiegand"])
    await until(lambda: gateway.serial.reader("rdr-wiegand").link.connected)
    rejected = gateway.counters.rejected
    ports["wiegand"].write(b"\x00\xffW26:2F7\x13noise W26:2F764DC\r\n")  # junk, bad parity
    converter.present(123, 45678)
    await until(lambda: feedback(gateway, "rdr-wiegand") == ["admit/ok"])
    converter.present(123, 45678, bits=34)  # the same card in 34-bit form: the same identity
    await until(lambda: feedback(gateway, "rdr-wiegand") == ["admit/ok", "admit/ok"])
    assert gateway.counters.rejected > rejected
    assert gateway.counters.rejected_by_cause["serial_bad_parity"] >= 1


async def test_osdp_secure_admit_and_deny_light_the_reader(serial_campus):
    gateway, _, sim, _ = serial_campus
    panel = gateway.serial.reader("rdr-osdp").panel
    await until(lambda: panel.online and panel.secure, timeout=15)
    sim.present_uid(MIFARE_CARD)
    commands = await asyncio.to_thread(sim.wait_commands, 3, 8.0)
    assert [c["command"] for c in commands[:3]] == [
        osdp.Command.LED,
        osdp.Command.Buzzer,
        osdp.Command.Output,
    ]
    assert commands[0]["on_color"] == osdp.CommandLEDColor.Green
    assert commands[2]["timer_count"] == 30  # the lock relay for unlock_ms = 3000
    sim.present_uid("DEADBEEF")
    commands = await asyncio.to_thread(sim.wait_commands, 5, 8.0)
    assert commands[3]["command"] == osdp.Command.LED
    assert commands[3]["on_color"] == osdp.CommandLEDColor.Red
    assert commands[4]["command"] == osdp.Command.Buzzer and commands[4]["rep_count"] == 3
    assert feedback(gateway, "rdr-osdp") == ["admit/ok", "deny/unknown_card"]


async def open_offline(dsn: str) -> set[str]:
    conn = await connect(dsn)
    try:
        return {a.device for a in await alert_store.open_alerts(conn, AlertKind.DEVICE_OFFLINE)}
    finally:
        await conn.close()


async def test_unplug_raises_device_offline_and_replug_resolves_it(serial_campus):
    gateway, ports, sim, dsn = serial_campus
    link = gateway.serial.reader("rdr-rdm6300").link
    panel = gateway.serial.reader("rdr-osdp").panel
    await until(lambda: link.connected and panel.online, timeout=15)
    ports["rdm6300"].unplug()
    sim.stop()  # the OSDP reader stops answering polls
    await until(lambda: not link.connected and not panel.online, timeout=15)
    offline: set[str] = set()
    for _ in range(100):
        offline = await open_offline(dsn)
        if {"rdr-rdm6300", "rdr-osdp"} <= offline:
            break
        await asyncio.sleep(0.1)
    assert {"rdr-rdm6300", "rdr-osdp"} <= offline
    ports["rdm6300"].plug()
    sim.start()
    await until(lambda: link.connected and panel.online, timeout=15)
    for _ in range(100):
        offline = await open_offline(dsn)
        if not offline & {"rdr-rdm6300", "rdr-osdp"}:
            break
        await asyncio.sleep(0.1)
    assert not offline & {"rdr-rdm6300", "rdr-osdp"}
    Rdm6300Reader(ports["rdm6300"]).present(EM_CARD)  # and cards flow again
    await until(lambda: feedback(gateway, "rdr-rdm6300") == ["admit/ok"])


@pytest.mark.parametrize("protocol", ["rdm6300", "wiegand"])
async def test_fuzzed_line_between_cards_loses_no_card(serial_campus, protocol):
    import random

    gateway, ports, _, _ = serial_campus
    rng = random.Random(4)
    port = ports[protocol]
    frame = (
        Rdm6300Reader.frame(EM_CARD)
        if protocol == "rdm6300"
        else WiegandConverter.frame(123, 45678)
    )
    await until(lambda: gateway.serial.reader(f"rdr-{protocol}").link.connected)
    rounds = 15
    for _ in range(rounds):
        port.write(rng.randbytes(rng.randrange(1, 40)) + frame)
        await asyncio.sleep(0.02)
    await until(lambda: len(feedback(gateway, f"rdr-{protocol}")) == rounds, timeout=15)
    assert set(feedback(gateway, f"rdr-{protocol}")) == {"admit/ok"}


async def test_osdp_card_data_of_no_known_length_is_dropped(serial_campus):
    gateway, _, sim, _ = serial_campus
    panel = gateway.serial.reader("rdr-osdp").panel
    await until(lambda: panel.online and panel.secure, timeout=15)
    sim.present_raw(0, 24, bytes.fromhex("A1B2C3"))  # 24 raw bits: no card_uid form
    sim.present_wiegand(123, 45678)
    await until(lambda: feedback(gateway, "rdr-osdp") == ["admit/ok"])
    assert gateway.counters.rejected_by_cause["serial_bad_frame"] == 1
