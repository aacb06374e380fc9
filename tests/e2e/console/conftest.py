"""A gateway on the private broker, the API served by uvicorn, both in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from api.app import create_app
from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import Campus, dump_manifest, generate_campus
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.accounts import set_password
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
# The browser the console tests drive; the variable lets a test play a machine without it.
CHROMIUM = os.environ.get("CAMPUSGATE_TEST_CHROMIUM", "/usr/bin/chromium")
GUARD = "guard-1"
PASSWORD = "night shift 2026"


@dataclass
class LiveSystem:
    url: str
    campus: Campus
    mqtt_url: str
    prefix: str
    dsn: str


@pytest.fixture(scope="module")
async def live_system(database_factory, mqtt_url, tmp_path_factory) -> AsyncIterator[LiveSystem]:
    dsn = await asyncio.to_thread(database_factory, "console")
    await apply_migrations(dsn)
    campus = generate_campus(seed=11, people=200)
    path = tmp_path_factory.mktemp("console") / "campus.yaml"
    dump_manifest(campus.manifest, path)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ)
        await add_operator(conn, GUARD, "guard")
        await set_password(conn, GUARD, PASSWORD, by="test")
    finally:
        await conn.close()
    prefix = f"c{secrets.token_hex(4)}"
    gateway = Gateway(
        GatewayConfig(
            database_url=dsn,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
            client_id=f"gw-{prefix}",
        )
    )
    await gateway.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(database_url=dsn), dsn), log_level="warning")
    )
    server.install_signal_handlers = lambda: None
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    port = sock.getsockname()[1]
    try:
        yield LiveSystem(f"http://127.0.0.1:{port}", campus, mqtt_url, prefix, dsn)
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        sock.close()
        await gateway.stop()


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under CI=true a missing browser fails the browser tests instead of skipping them:
    a run that skipped the console is not green (runs before the skipif is evaluated)."""
    if not _ci() or os.path.exists(CHROMIUM):
        return
    for mark in item.iter_markers("skipif"):
        if "chromium" in str(mark.kwargs.get("reason", "")):
            pytest.fail(
                f"CI=true and {CHROMIUM} is missing: install it "
                "(apt-get install -y chromium fonts-wqy-microhei) or run .ci/run",
                pytrace=False,
            )
