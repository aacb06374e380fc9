"""Visitor passes end to end: a fresh database per test, a gateway signing with a key
the API reads too, simulated terminals, the operator API and a host signed in as a
person (the placeholder person sign-in overridden)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from person_sign_in import person_bearer
from visitors_campus import CAMPUS, DEVICES, OPERATORS

from api.app import create_app
from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import AlertWatch, Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.signing import load_or_create_key
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def visit_dsn(new_database, tmp_path: Path) -> str:
    dsn = await new_database("visitors")
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
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "command-signing.pem"
    load_or_create_key(path)
    return path


@pytest.fixture
def prefix() -> str:
    return f"v{secrets.token_hex(4)}"


@pytest.fixture
async def gateway(visit_dsn, mqtt_url, prefix, key_file) -> AsyncIterator[Gateway]:
    config = GatewayConfig(
        database_url=visit_dsn,
        broker=BrokerAddress.parse(mqtt_url),
        topic_prefix=prefix,
        policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
        client_id=f"gw-{prefix}",
        signing_key=load_or_create_key(key_file)[0],
    )
    gw = Gateway(config)
    await gw.start()
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
    host: httpx.AsyncClient  # signed in as person T1

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]


@pytest.fixture
async def api(visit_dsn, key_file) -> AsyncIterator[Api]:
    conn = await connect(visit_dsn)
    try:
        tokens = {}
        for name, (role, unit) in OPERATORS.items():
            tokens[name] = await add_operator(conn, name, role)
            if unit:
                await set_org_unit(conn, name, unit)
    finally:
        await conn.close()
    app = create_app(Settings(database_url=visit_dsn, signing_key_file=key_file), visit_dsn)
    host_token = await person_bearer(visit_dsn, "T1")  # the host, through a real session
    async with app.router.lifespan_context(app):

        def client(headers: dict[str, str]) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers=headers,
            )

        clients = {n: client({"Authorization": f"Bearer {t}"}) for n, t in tokens.items()}
        host = client({"Authorization": f"Bearer {host_token}"})
        try:
            yield Api(clients, host)
        finally:
            for c in [*clients.values(), host]:
                await c.aclose()
