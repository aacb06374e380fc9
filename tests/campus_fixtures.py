"""A small campus at real doors, for end-to-end tests (imported by a folder's conftest,
not one itself): a fresh database per test with the folder's manifest imported, a
gateway on the private broker (`start_gateway` again: a restart), simulated terminals,
a console-like alert watch, and the operator API with a bearer-token client per operator
(and one signed in as a person, when the campus names a host).

A folder's conftest imports these fixtures and defines `campus`, a `Campus`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from person_sign_in import api_client, person_bearer

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
WINDOW_S = 2.0


@dataclass(frozen=True)
class Campus:
    """What a folder's tests run on.

    `operators`: name -> (role, org unit or None). `signed`: the gateway signs commands
    with a key the API reads too (visitor QR tokens). `host`: a person signed in through
    a real session (`Api.host`).
    """

    label: str
    manifest: str
    devices: tuple[str, ...]
    operators: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    signed: bool = False
    host: str | None = None


@dataclass
class Api:
    clients: dict[str, httpx.AsyncClient]
    host: httpx.AsyncClient | None = None  # signed in as Campus.host

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]


async def imported_campus(
    new_database: Callable[[str], Awaitable[str]], label: str, manifest: str, folder: Path
) -> str:
    """A fresh database (named after `label`) with `manifest` imported; its DSN."""
    dsn = await new_database(label)
    await apply_migrations(dsn)
    path = folder / "campus.yaml"
    path.write_text(manifest)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ, operator="test")
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def campus_dsn(campus: Campus, new_database, tmp_path: Path) -> str:
    """A fresh database with the campus's manifest imported."""
    return await imported_campus(new_database, campus.label, campus.manifest, tmp_path)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "command-signing.pem"
    load_or_create_key(path)
    return path


@pytest.fixture
def prefix(campus: Campus) -> str:
    return f"{campus.label[0]}{secrets.token_hex(4)}"


@pytest.fixture
def start_gateway(
    campus: Campus, campus_dsn: str, mqtt_url: str, prefix: str, key_file: Path
) -> Callable[[], Awaitable[Gateway]]:
    """Start a gateway on the test's database and topics (a second call: a restart)."""

    async def start() -> Gateway:
        config = GatewayConfig(
            database_url=campus_dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=WINDOW_S),
            client_id=f"gw-{prefix}",
            signing_key=load_or_create_key(key_file)[0] if campus.signed else None,
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
async def fleet(campus: Campus, gateway, mqtt_url, prefix) -> AsyncIterator[Fleet]:
    async with Fleet(mqtt_url, campus.devices, prefix=prefix) as f:
        yield f


@pytest.fixture
async def alerts(gateway, mqtt_url, prefix) -> AsyncIterator[AlertWatch]:
    async with AlertWatch(mqtt_url, prefix=prefix) as watch:
        yield watch


@pytest.fixture
async def api(campus: Campus, campus_dsn: str, key_file: Path) -> AsyncIterator[Api]:
    """The operator API over the test's database, a bearer-token client per operator."""
    conn = await connect(campus_dsn)
    try:
        tokens = {}
        for name, (role, unit) in campus.operators.items():
            tokens[name] = await add_operator(conn, name, role)
            if unit:
                await set_org_unit(conn, name, unit)
    finally:
        await conn.close()
    settings = Settings(
        database_url=campus_dsn, signing_key_file=key_file if campus.signed else None
    )
    app = create_app(settings, campus_dsn)
    host_token = await person_bearer(campus_dsn, campus.host) if campus.host else None
    async with app.router.lifespan_context(app):
        clients = {name: api_client(app, token) for name, token in tokens.items()}
        host = api_client(app, host_token) if host_token else None
        try:
            yield Api(clients, host)
        finally:
            for client in [*clients.values(), *([host] if host else [])]:
                await client.aclose()
