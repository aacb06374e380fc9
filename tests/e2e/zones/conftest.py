"""A small campus for occupancy, gatherings and response levels: a fresh database per
test, a gateway on the private broker, simulated terminals and the operator API."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from zones_campus import CAMPUS, DEVICES, ROLES

from api.app import create_app
from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import AlertWatch, Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
WINDOW_S = 2.0


@pytest.fixture
async def zone_dsn(new_database, tmp_path: Path) -> str:
    dsn = await new_database("zones")
    await apply_migrations(dsn)
    path = tmp_path / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ, operator="test")
    finally:
        await conn.close()
    return dsn


@pytest.fixture
def prefix() -> str:
    return f"z{secrets.token_hex(4)}"


@pytest.fixture
def start_gateway(zone_dsn, mqtt_url, prefix) -> Callable[[], Awaitable[Gateway]]:
    """Start a gateway on the test's database and topics (a second call: a restart)."""

    async def start() -> Gateway:
        config = GatewayConfig(
            database_url=zone_dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=WINDOW_S),
            client_id=f"gw-{prefix}",
        )
        gw = Gateway(config)
        await gw.start()
        return gw

    return start


@pytest.fixture
async def gateway(start_gateway) -> AsyncIterator[Gateway]:
    gw = await start_gateway()
    yield gw
    await gw.stop()


@pytest.fixture
async def fleet(gateway, mqtt_url, prefix) -> AsyncIterator[Fleet]:
    async with Fleet(mqtt_url, DEVICES, prefix=prefix) as f:
        yield f


@pytest.fixture
async def alerts(gateway, mqtt_url, prefix) -> AsyncIterator[AlertWatch]:
    async with AlertWatch(mqtt_url, prefix=prefix) as watch:
        yield watch


@dataclass
class Api:
    clients: dict[str, httpx.AsyncClient]

    def __getitem__(self, role: str) -> httpx.AsyncClient:
        return self.clients[role]


@pytest.fixture
async def api(zone_dsn) -> AsyncIterator[Api]:
    """The operator API over the test's database, a bearer-token client per role."""
    conn = await connect(zone_dsn)
    try:
        tokens = {role: await add_operator(conn, role, role) for role in ROLES}
    finally:
        await conn.close()
    app = create_app(Settings(database_url=zone_dsn), zone_dsn)
    async with app.router.lifespan_context(app):
        clients = {
            role: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {token}"},
            )
            for role, token in tokens.items()
        }
        try:
            yield Api(clients)
        finally:
            for client in clients.values():
                await client.aclose()
