"""Database fixtures, and an API app over a small campus with one operator per role.

The campus holds sentinel health data (a reason text, temperatures) that no guard or
liaison may ever see, and contact details that lists show only masked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from api.app import create_app
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
ROLES = ("admin", "guard", "health_officer", "liaison")
SENTINEL_REASON = "SENTINEL-reason-contact-with-case-7f3a"
SENTINEL_HISTORY_REASON = "SENTINEL-history-reason-earlier-fever-91c2"
EVENT_CELSIUS = 38.71
ALERT_CELSIUS = 38.72
READING_CELSIUS = 39.9
PHONE, ID_NUMBER = "13812345678", "110101199003071234"

CAMPUS = f"""
org_units:
  - {{id: cs, name: Computer Science}}
  - {{id: cs-1, name: Class 1, parent: cs}}
  - {{id: math, name: Mathematics}}
zones:
  - {{id: dorm-1, name: Dorm 1, kind: dormitory, capacity: 100}}
doors:
  - {{id: dorm-1-main, zone: dorm-1, direction: both, requires_temperature: true}}
devices:
  - {{id: term-dorm-1, door: dorm-1-main, kind: terminal, transport: mqtt}}
people:
  - {{id: S001, kind: student, name: Li Hua, org_unit: cs-1, cards: ["04A1B2C3"],
     phone: "{PHONE}", id_number: "{ID_NUMBER}"}}
  - {{id: S002, kind: student, name: Wang Fang, org_unit: math, cards: ["04A1B2C4"]}}
  - {{id: S003, kind: student, name: Zhao Lei, org_unit: cs-1, cards: ["04A1B2C6"]}}
  - {{id: T001, kind: staff, name: Zhang Wei, org_unit: cs, cards: ["04A1B2C5"],
     phone: "+8613912345678"}}
grants:
  - {{subject: {{org_unit: cs}}, zone: dorm-1}}
  - {{subject: {{person: S001}}, zone: dorm-1, schedule: "daily 06:00-23:00"}}
health:
  - {{person: S001, status: close_contact, until: "2099-01-01",
     reason: "{SENTINEL_REASON}", caretaker: T001}}
  - {{person: S003, status: fever_watch, reason: "{SENTINEL_REASON}"}}
"""


@dataclass
class PrivacyWorld:
    dsn: str
    tokens: dict[str, str]


async def _seed_health_data(dsn: str) -> None:
    """An earlier status in the history, a fever at the door, a fever alert, a reading."""
    conn = await connect(dsn)
    try:
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO health_history (person_id, status, since, reason, changed_by, changed_at)"
            " VALUES ('S001', 'fever_watch', $1, $2, 'test', $1)",
            now - timedelta(days=3),
            SENTINEL_HISTORY_REASON,
        )
        await conn.fetchval("SELECT campusgate_ensure_access_partition($1)", now)
        await conn.execute(
            "INSERT INTO access_events (device_id, event_id, type, device_ts, received_at,"
            " door_id, zone_id, person_id, card_uid, direction, celsius, decision, reason)"
            " VALUES ('term-dorm-1', 'e-fever', 'card', $1, $1, 'dorm-1-main', 'dorm-1',"
            " 'S001', '04A1B2C3', 'in', $2, 'deny', 'fever')",
            now - timedelta(minutes=30),
            EVENT_CELSIUS,
        )
        await conn.execute(
            "INSERT INTO alerts (id, kind, severity, ts, door, zone, device, person, detail)"
            " VALUES ('a-fever-s001', 'fever', 'critical', $1, 'dorm-1-main', 'dorm-1',"
            " 'term-dorm-1', 'S001', $2)",
            now - timedelta(minutes=30),
            {"card_uid": "04A1B2C3", "reason": "fever", "celsius": ALERT_CELSIUS},
        )
        await conn.execute(
            "INSERT INTO alert_history (alert_id, status, operator) VALUES ('a-fever-s001', 'open', NULL)"
        )
        if await conn.fetchval("SELECT to_regclass('travel_declarations') IS NOT NULL"):
            await conn.execute(
                "INSERT INTO travel_declarations (person_id, destination, departure_date,"
                " return_date, declared_by) VALUES ('S001', 'Harbin', $1, $2, 'liaison')",
                (now - timedelta(days=10)).date(),
                (now - timedelta(days=5)).date(),
            )
        if await conn.fetchval("SELECT to_regclass('health_readings') IS NOT NULL"):
            await conn.execute(
                "INSERT INTO health_readings (person_id, celsius, fever, measured_at, recorded_by,"
                " note) VALUES ('S001', $1, true, $2, 'guard', $3)",
                READING_CELSIUS,
                now - timedelta(minutes=20),
                SENTINEL_HISTORY_REASON,
            )
            await conn.execute(
                "INSERT INTO health_readings (person_id, celsius, fever, measured_at, recorded_by,"
                " note) VALUES ('S003', $1, true, $2, 'guard', $3)",
                READING_CELSIUS,
                now - timedelta(minutes=10),
                SENTINEL_HISTORY_REASON,
            )
        await _generate_reports(conn)
    finally:
        await conn.close()


async def _generate_reports(conn: asyncpg.Connection) -> None:
    """Today's daily reports, when that workflow is there (their lists name people)."""
    try:
        from gateway.services.reports.service import generate_reports
    except ImportError:
        return
    await generate_reports(
        conn, day=datetime.now(TZ).date(), settings=Settings(), by="test", org_units=[None, "cs"]
    )


@pytest.fixture(scope="module")
async def privacy_world(database_factory, tmp_path_factory) -> PrivacyWorld:
    dsn = await asyncio.to_thread(database_factory, "privacy")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("privacy")) / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    tokens: dict[str, str] = {}
    try:
        await import_file(conn, path, tz=TZ, operator="test")
        for role in ROLES:
            tokens[role] = await add_operator(conn, role, role)
        await set_org_unit(conn, "liaison", "cs")
    finally:
        await conn.close()
    await _seed_health_data(dsn)
    return PrivacyWorld(dsn, tokens)


@pytest.fixture(scope="module")
async def privacy_app(privacy_world: PrivacyWorld) -> AsyncIterator[object]:
    application = create_app(Settings(database_url=privacy_world.dsn), privacy_world.dsn)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client_for(
    privacy_app: object, privacy_world: PrivacyWorld
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """client_for(role) -> an httpx client with that role's bearer token."""
    clients: list[httpx.AsyncClient] = []

    def make(role: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=privacy_app),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {privacy_world.tokens[role]}"},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
