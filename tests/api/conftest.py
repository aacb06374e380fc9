"""An API app over a migrated database with a small campus and one operator per role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.services.accounts import set_password
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct horse battery"

CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
  - {id: cs-1, name: Class 1, parent: cs}
  - {id: math, name: Mathematics}
zones:
  - {id: dorm-1, name: Dorm 1, kind: dormitory, capacity: 100}
  - {id: lab-1, name: Lab 1, kind: lab, capacity: 10}
doors:
  - {id: dorm-1-main, zone: dorm-1, direction: both}
  - {id: lab-1-door, zone: lab-1, direction: both}
devices:
  - {id: term-dorm-1, door: dorm-1-main, kind: terminal, transport: mqtt}
  - {id: term-lab-1, door: lab-1-door, kind: terminal, transport: mqtt}
people:
  - {id: "S001", kind: student, name: Li Hua, org_unit: cs-1, cards: ["04A1B2C3"]}
  - {id: "S002", kind: student, name: Wang Fang, org_unit: math, cards: ["04A1B2C4"]}
  - {id: "T001", kind: staff, name: Zhang Wei, org_unit: cs, cards: ["04A1B2C5"]}
grants:
  - {subject: {org_unit: cs}, zone: lab-1}
health:
  - {person: "S002", status: home_isolation, reason: returned from an epidemic area, caretaker: T001}
"""

ROLES = ("admin", "guard", "health_officer", "liaison")


@dataclass
class ApiWorld:
    dsn: str
    tokens: dict[str, str]
    app: object


@pytest.fixture(scope="session")
async def api_world(database_factory, tmp_path_factory) -> ApiWorld:
    dsn = await asyncio.to_thread(database_factory, "api")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("api")) / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    tokens: dict[str, str] = {}
    try:
        await import_file(conn, path, tz=TZ, operator="test")
        for role in ROLES:
            tokens[role] = await add_operator(conn, role, role)
            await set_password(conn, role, PASSWORD, by="test")
        await set_org_unit(conn, "liaison", "cs")
        now = datetime.now(UTC)
        await insert_alerts(
            conn,
            [
                Alert(
                    "a-outsider-1",
                    AlertKind.OUTSIDER,
                    now - timedelta(minutes=5),
                    Severity.HIGH,
                    "dorm-1-main",
                    "dorm-1",
                    "term-dorm-1",
                ),
                Alert(
                    "a-fever-1",
                    AlertKind.FEVER,
                    now - timedelta(minutes=4),
                    Severity.CRITICAL,
                    "dorm-1-main",
                    "dorm-1",
                    "term-dorm-1",
                    "S001",
                    {"celsius": 38.4},
                ),
            ],
        )
    finally:
        await conn.close()
    return ApiWorld(dsn, tokens, None)


@pytest.fixture(scope="session")
async def app(api_world):
    # Many tests log in from the one test address: the per-address lock-out is tested
    # with its own app (test_operator_security.py).
    settings = Settings(database_url=api_world.dsn, login_failures_per_address=100_000)
    application = create_app(settings, api_world.dsn)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client_for(app, api_world):
    """client_for(role) -> an httpx client authenticated with that role's bearer token."""
    clients: list[httpx.AsyncClient] = []

    def make(role: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_world.tokens[role]}"} if role else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def admin(client_for) -> AsyncIterator[httpx.AsyncClient]:
    yield client_for("admin")
