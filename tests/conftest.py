"""Shared fixtures: a fresh PostgreSQL database and a private Mosquitto broker per session."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
if not os.path.exists(MOSQUITTO):
    raise pytest.UsageError(
        "the tests need the mosquitto broker binary: install it (Debian: apt-get install mosquitto)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(coro):
    """Run a coroutine to completion from sync code, even inside a running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(admin_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _reachable(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
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


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    template = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"
    body = template.read_text() if template.exists() else ""
    # The deploy file listens on 1883; the tests use a private port and no persistence file.
    body = "\n".join(
        line
        for line in body.splitlines()
        if not line.startswith(("listener", "persistence", "log_dest"))
    )
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{body}\n")
    # The log goes to a file: an unread pipe would fill up and stall the broker.
    log = workdir / f"mosquitto-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start listening within 10 s")


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
