"""Shared fixtures: a fresh PostgreSQL database and a private Mosquitto broker per session."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from broker_fixtures import start_mosquitto
from db_fixtures import (  # noqa: F401  (fixtures for every test: tests/db_fixtures.py)
    conn,
    fresh_db,
    fresh_db_module,
    new_database,
    roster_listener,
)
from nats_cluster import NatsCluster, require_nats_server
from xdist_groups import TrafficScheduling, order

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every `serve`/`worker` the tests start would open the worker metrics port (9108) by
# default, and runs side by side would collide: tests that want the server set a port.
os.environ.setdefault("CAMPUSGATE_METRICS_PORT", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order(items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> TrafficScheduling:
    """Units of work for the xdist workers: tests/xdist_groups.py."""
    return TrafficScheduling(config, log)


def _run(coro):
    """Run a coroutine to completion from sync code, even inside a running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(admin_dsn: str, sql: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def _reachable(dsn: str) -> bool:
    try:
        probe = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await probe.close()
    return True


def _dsn_for(admin_dsn: str, name: str) -> str:
    parts = urlsplit(admin_dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory) -> Iterator[str]:
    """A PostgreSQL server to make test databases on.

    CAMPUSGATE_TEST_ADMIN_DSN if set, else the server on 127.0.0.1:5432, else an
    embedded one (pgserver) for this session, so a newcomer needs no server of their own
    (CAMPUSGATE_TEST_ADMIN_DSN=embedded forces that).
    """
    configured = os.environ.get("CAMPUSGATE_TEST_ADMIN_DSN")  # "embedded" forces pgserver
    if configured and configured != "embedded":
        yield configured
        return
    if not configured and _run(_reachable(DEFAULT_ADMIN_DSN)):
        yield DEFAULT_ADMIN_DSN
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


# Databases to drop when the session ends: (admin DSN, name). Dropped in
# pytest_sessionfinish, not in the fixture's teardown: that teardown runs inside the
# last test's pytest-timeout, and a few hundred DROP DATABASE on a loaded machine
# can take longer than one test may.
_CREATED_DATABASES: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def database_factory(admin_dsn: str) -> Iterator:
    """Creates fresh, empty databases on demand; they are dropped when the session ends."""
    configured = os.environ.get("CAMPUSGATE_TEST_ADMIN_DSN")
    embedded = configured == "embedded" or (not configured and admin_dsn != DEFAULT_ADMIN_DSN)

    def make(label: str = "t") -> str:
        name = f"cg_test_{label}_{os.getpid()}_{secrets.token_hex(3)}"
        _run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
        if not embedded:  # an embedded server is removed whole at the end of the session
            _CREATED_DATABASES.append((admin_dsn, name))
        return _dsn_for(admin_dsn, name)

    yield make


async def _drop_all(databases: list[tuple[str, str]]) -> None:
    for admin_dsn, name in databases:
        try:
            await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"could not drop test database {name}: {exc}")


def pytest_sessionfinish(session, exitstatus) -> None:
    if _CREATED_DATABASES:
        _run(_drop_all(list(_CREATED_DATABASES)))
        _CREATED_DATABASES.clear()


@pytest.fixture(scope="session")
def empty_db(database_factory) -> str:
    """A fresh database with no schema, for migration tests."""
    return database_factory("empty")


@pytest.fixture(scope="session")
def db_dsn(database_factory) -> str:
    """A fresh, migrated database shared by the session."""
    from gateway.store.migrate import apply_migrations

    dsn = database_factory("main")
    _run(apply_migrations(dsn))
    return dsn


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory) -> Iterator[str]:
    """A private Mosquitto broker on a free port for this session."""
    proc, port = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory) -> Iterator[None]:
    """Gateways the tests start (in process or as `campusgate serve`/`worker`) keep their
    files, such as the command-signing key they make on first start, out of the user's home."""
    if "CAMPUSGATE_DATA_DIR" in os.environ:
        yield
        return
    os.environ["CAMPUSGATE_DATA_DIR"] = str(tmp_path_factory.mktemp("campusgate-data"))
    try:
        yield
    finally:
        os.environ.pop("CAMPUSGATE_DATA_DIR", None)


@pytest.fixture
def nats_cluster(tmp_path) -> Iterator[NatsCluster]:
    """A three-node NATS cluster (JetStream, MQTT 3.1.1 listeners) of this test's own.

    `.urls` are the nodes' MQTT URLs, `.url` all of them comma-separated (as
    CAMPUSGATE_MQTT_URL takes them), `.kill(i)` / `.start(i)` SIGKILL and restart node i.
    Ready when every node sees a JetStream leader and accepts an MQTT session; about 4 s.
    For other options (ack_wait, max_ack_pending) use `NatsCluster` itself.
    """
    require_nats_server()
    with NatsCluster(tmp_path / "nats") as cluster:
        yield cluster
