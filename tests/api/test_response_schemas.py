"""Every GET answer matches the response schema the OpenAPI document declares for it.

The app runs under uvicorn on a free port over its own database (a small campus with
alerts, a health status and logged events, so the lists are not empty); schemathesis
sends a few generated requests per operation and, for operations with ids in their path,
one with ids that exist, as a role that sees health data and as roles that do not (whose
answers have the redacted shapes), and checks each answer against the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
  - {id: cs-1, name: Class 1, parent: cs}
zones:
  - {id: dorm-1, name: Dorm 1, kind: dormitory, capacity: 100}
doors:
  - {id: dorm-1-main, zone: dorm-1, direction: both}
devices:
  - {id: term-dorm-1, door: dorm-1-main, kind: terminal, transport: mqtt}
people:
  - {id: "S001", kind: student, name: Li Hua, org_unit: cs-1, cards: ["04A1B2C3"]}
  - {id: "S002", kind: student, name: Wang Fang, org_unit: cs-1, cards: ["04A1B2C4"]}
  - {id: "T001", kind: staff, name: Zhang Wei, org_unit: cs, cards: ["04A1B2C5"]}
grants:
  - {subject: {org_unit: cs}, zone: dorm-1}
health:
  - {person: "S002", status: home_isolation, reason: returned from an epidemic area, caretaker: T001}
  - {person: "S001", status: fever_watch, reason: 37.6 at the dorm door}
"""
GENERATED_PER_OPERATION = 3
CHECKS = [not_a_server_error, response_schema_conformance]
# Ids that exist in CAMPUS and the rows below, so the 200 answers are checked too.
KNOWN = {
    "person_id": "S002",
    "zone_id": "dorm-1",
    "door_id": "dorm-1-main",
    "device_id": "term-dorm-1",
    "alert_id": "a-fever-1",
    "grant_id": 1,
    "caretaker_id": "T001",
}
# admin sees health data; guard and liaison get the redacted shapes.
ROLES = ("admin", "guard", "liaison")


@dataclass
class LiveApi:
    url: str
    tokens: dict[str, str]
    schema: dict


async def _seed(dsn: str, tmp: Path) -> dict[str, str]:
    path = tmp / "campus.yaml"
    path.write_text(CAMPUS)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=TZ, operator="test")
        tokens = {role: await add_operator(conn, role, role) for role in ROLES}
        await set_org_unit(conn, "liaison", "cs")
        now = datetime.now(UTC)
        await insert_alerts(
            conn,
            [
                Alert(
                    "a-fever-1",
                    AlertKind.FEVER,
                    now - timedelta(minutes=4),
                    Severity.CRITICAL,
                    "dorm-1-main",
                    "dorm-1",
                    "term-dorm-1",
                    "S001",
                    {"celsius": 38.4, "card_uid": "04A1B2C3"},
                )
            ],
        )
        await conn.executemany(
            "INSERT INTO access_events (device_id, event_id, type, device_ts, received_at,"
            " door_id, zone_id, person_id, card_uid, direction, celsius, decision, reason)"
            " VALUES ('term-dorm-1', $1, 'card', $2, $2, 'dorm-1-main', 'dorm-1', 'S001',"
            " '04A1B2C3', 'in', $3, $4, $5)",
            [
                ("e-1", now - timedelta(minutes=5), None, "admit", "ok"),
                ("e-2", now - timedelta(minutes=4), 38.4, "deny", "fever"),
            ],
        )
        await conn.execute(
            "INSERT INTO health_readings (person_id, celsius, fever, measured_at, recorded_by)"
            " VALUES ('S001', 37.1, false, now(), 'guard')"
        )
        await conn.execute(
            "INSERT INTO epidemic_areas (name, match, effective_from, created_by, updated_by)"
            " VALUES ('Wuhan', 'Wuhan', current_date - 10, 'test', 'test')"
        )
        await conn.execute(
            "INSERT INTO travel_declarations"
            " (person_id, destination, departure_date, return_date, declared_by)"
            " VALUES ('T001', 'Shanghai', current_date - 5, current_date - 2, 'test')"
        )
    finally:
        await conn.close()
    return tokens


@pytest.fixture(scope="module")
async def live_api(database_factory, tmp_path_factory) -> AsyncIterator[LiveApi]:
    dsn = await asyncio.to_thread(database_factory, "api_schemas")
    await apply_migrations(dsn)
    tokens = await _seed(dsn, Path(tmp_path_factory.mktemp("api_schemas")))
    app = create_app(Settings(database_url=dsn), dsn)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.install_signal_handlers = lambda: None
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield LiveApi(f"http://127.0.0.1:{sock.getsockname()[1]}", tokens, app.openapi())
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        sock.close()


def _check_operation(
    operation: APIOperation, live: LiveApi, role: str, session: requests.Session
) -> int:
    """Check generated requests and, when every path id is known, one that exists."""
    headers = {"Authorization": f"Bearer {live.tokens[role]}"}
    checked = 0

    def check(case: schemathesis.Case) -> None:
        nonlocal checked
        response = case.call(base_url=live.url, session=session, headers=headers)
        case.validate_response(response, checks=CHECKS)
        checked += 1

    # One test case is one request to a live server: no deadline, no shrinking.
    @settings(
        max_examples=GENERATED_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def generated(case: schemathesis.Case) -> None:
        check(case)

    generated()
    names = [p.name for p in operation.path_parameters]
    if names and all(name in KNOWN for name in names):
        check(operation.Case(path_parameters={name: KNOWN[name] for name in names}))
    return checked


def _check_gets(live: LiveApi) -> tuple[int, list[str]]:
    """(answers checked, failures) over every GET operation, for every role."""
    schema = schemathesis.openapi.from_dict(live.schema)
    checked = 0
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        for role in ROLES:
            try:
                checked += _check_operation(operation, live, role, session)
            except (AssertionError, FailureGroup) as exc:  # keep going, report them all
                failures.append(f"{role} GET {operation.path}: {exc}")
    return checked, failures


async def test_get_answers_match_their_declared_schemas(live_api: LiveApi) -> None:
    checked, failures = await asyncio.to_thread(_check_gets, live_api)
    assert not failures, "\n\n".join(failures[:10])
    assert checked > 100  # every GET operation, every role, generated and known ids


def test_list_answers_declare_their_item_schema(app) -> None:
    """The resources moved off plain dicts describe their answers (not an empty schema)."""
    paths = app.openapi()["paths"]
    for path in (
        "/api/people",
        "/api/people/{person_id}",
        "/api/doors",
        "/api/devices/{device_id}",
        "/api/zones",
        "/api/org-units",
        "/api/grants",
        "/api/health",
        "/api/alerts",
        "/api/alerts/{alert_id}",
        "/api/events",
        "/api/audit",
        "/api/reports/today",
    ):
        content = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        assert content["schema"], path
