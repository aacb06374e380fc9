"""An OSDP reader without a secure-channel key does not run unless a test bench allows it."""

from __future__ import annotations

import asyncio
import json
import secrets
from zoneinfo import ZoneInfo

import pytest

from devices.transports.mqtt import BrokerAddress
from firmware_sim.pty_card_readers import OsdpReader, PtyPort
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.serial_reader_pool import InsecureOsdpError
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")


async def until(predicate, timeout: float = 8.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def keyless_reader(tmp_path, database_factory):
    """A campus with one OSDP reader on a pseudo-terminal, and no key for it."""
    port = PtyPort(tmp_path / "tty-osdp")
    manifest = {
        "zones": [{"id": "lab", "name": "Lab", "kind": "lab"}],
        "doors": [{"id": "lab-door", "zone": "lab", "direction": "in"}],
        "devices": [
            {"id": "rdr-open", "door": "lab-door", "kind": "card_reader", "transport": "serial",
             "port": str(port.path), "protocol": "osdp"},
        ],
    }  # fmt: skip
    dsn = database_factory("osdp-insecure")
    await apply_migrations(dsn)
    path = tmp_path / "campus.json"
    path.write_text(json.dumps(manifest))
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ)
    finally:
        await conn.close()
    yield dsn, port
    port.unplug()


def _gateway(dsn: str, mqtt_url: str, *, allow: bool) -> Gateway:  # no OSDP keys at all
    prefix = f"t{secrets.token_hex(4)}"
    return Gateway(
        GatewayConfig(
            database_url=dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
            client_id=f"gw-{prefix}",
            osdp_allow_insecure=allow,
        )
    )


async def test_keyless_osdp_reader_refuses_to_start(keyless_reader, mqtt_url):
    dsn, _ = keyless_reader
    gateway = _gateway(dsn, mqtt_url, allow=False)
    try:
        with pytest.raises(InsecureOsdpError) as refused:
            await gateway.start()
    finally:
        await gateway.stop()
    message = str(refused.value)
    assert "rdr-open" in message
    assert "CAMPUSGATE_OSDP_KEYS" in message and "CAMPUSGATE_OSDP_ALLOW_INSECURE" in message


async def test_test_bench_may_allow_a_keyless_reader(keyless_reader, mqtt_url):
    dsn, port = keyless_reader
    reader = OsdpReader(port)  # the simulated reader without a secure channel
    reader.start()
    gateway = _gateway(dsn, mqtt_url, allow=True)
    try:
        await gateway.start()
        assert gateway.serial is not None
        panel = gateway.serial.reader("rdr-open").panel
        await until(lambda: panel.online)
    finally:
        await gateway.stop()
        reader.stop()
