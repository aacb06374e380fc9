"""A campus in a fresh database, a gateway on the private broker, and simulated doors."""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

import pytest

from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import Campus, dump_manifest, generate_campus
from firmware_sim.fleet import AlertWatch, Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")
WINDOW_S = 2.0

# Extra rows the generated campus lacks: a zone of capacity 1 for `zone_full`.
TINY_ZONE = {
    "zones": [{"id": "tiny-room", "name": "Tiny room", "kind": "other", "capacity": 1}],
    "doors": [{"id": "tiny-door", "zone": "tiny-room", "direction": "both"}],
    "devices": [
        {"id": "term-tiny-door", "door": "tiny-door", "kind": "terminal", "transport": "mqtt"}
    ],
    "grants": [{"subject": {"kind": "staff"}, "zone": "tiny-room"}],
}


@pytest.fixture(scope="session")
def campus() -> Campus:
    return generate_campus(seed=7, people=400)


@pytest.fixture(scope="session")
async def campus_dsn(database_factory, campus, tmp_path_factory) -> str:
    dsn = database_factory("pipeline")
    await apply_migrations(dsn)
    folder = tmp_path_factory.mktemp("campus")
    dump_manifest(campus.manifest, folder / "campus.yaml")
    dump_manifest(TINY_ZONE, folder / "tiny.yaml")
    conn = await connect(dsn)
    try:
        await import_file(conn, folder / "campus.yaml", tz=TZ)
        await import_file(conn, folder / "tiny.yaml", tz=TZ)
    finally:
        await conn.close()
    return dsn


def make_config(
    dsn: str, mqtt_url: str, prefix: str, *, client_id: str = "test-gateway"
) -> GatewayConfig:
    return GatewayConfig(
        database_url=dsn,
        broker=BrokerAddress.parse(mqtt_url),
        topic_prefix=prefix,
        policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=WINDOW_S),
        client_id=client_id,
    )


@pytest.fixture
def config_factory():
    """`make_config`, for tests that build their own gateway."""
    return make_config


@pytest.fixture
def window_s() -> float:
    return WINDOW_S


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own per test, so retained states and sessions never mix."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
async def gateway(campus_dsn, mqtt_url, prefix):
    gw = Gateway(make_config(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def fleet(gateway, campus, mqtt_url, prefix):
    devices = [*campus.facts.mqtt_devices, "term-tiny-door"]
    async with Fleet(mqtt_url, devices, prefix=prefix) as f:
        yield f


@pytest.fixture
async def alerts(gateway, mqtt_url, prefix):
    async with AlertWatch(mqtt_url, prefix=prefix) as watch:
        yield watch
