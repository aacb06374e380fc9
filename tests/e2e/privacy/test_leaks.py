"""Every GET route of the app, role by role: no health reason or temperature reaches a guard
or a liaison, and no health status reaches a guard (they see only `health_hold`).

The routes come from the app itself (app.routes), so a route added later is walked too.
Path parameters are filled from the sentinel campus; a route that answers 422 without
query parameters is asked again with the usual ones.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from privacy_fixtures import (
    ALERT_CELSIUS,
    EVENT_CELSIUS,
    READING_CELSIUS,
    SENTINEL_HISTORY_REASON,
    SENTINEL_REASON,
)

from gateway.domain.health import HealthStatus

SENTINEL_TEXTS = (SENTINEL_REASON, SENTINEL_HISTORY_REASON)
SENTINEL_TEMPERATURES = (EVENT_CELSIUS, ALERT_CELSIUS, READING_CELSIUS)
TEMPERATURE_KEYS = frozenset({"celsius", "temperature", "temperature_c", "max_celsius"})
STATUS_NAMES = frozenset(s.value for s in HealthStatus if s.blocks_entry)
TODAY = datetime.now(UTC).date().isoformat()
# Path parameter -> a value of the sentinel campus (by the parameter's name).
PATH_VALUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("alert", ("a-fever-s001",)),
    ("caretaker", ("T001",)),
    ("person", ("S001", "S003")),
    ("zone", ("dorm-1",)),
    ("door", ("dorm-1-main",)),
    ("device", ("term-dorm-1",)),
    ("org", ("cs",)),
    ("unit", ("cs",)),
    ("day", (TODAY,)),
    ("date", (TODAY,)),
    ("level", ("normal",)),
    ("grant", ("1",)),
    ("report", ("1", "2", "3", "4")),  # campus and cs, students and staff
    ("uid", ("04A1B2C3",)),
)
RETRY_QUERY = {
    "person": "S001",
    "person_id": "S001",
    "zone": "dorm-1",
    "zone_id": "dorm-1",
    "org_unit": "cs",
    "day": TODAY,
    "date": TODAY,
}
SKIP_PREFIXES = ("/docs", "/redoc", "/openapi", "/static")


def get_paths(app: Any) -> list[str]:
    """Every GET route's path under /api/, with its parameters filled in."""
    paths: set[str] = set()
    for path, methods in _routes(app.routes):
        if "GET" in methods and path.startswith("/api/"):
            paths.update(_fill(path))
    return sorted(paths)


def _fill(path: str) -> list[str]:
    """The path with each parameter replaced by every value the campus offers for it."""
    match = re.search(r"\{([^}:]+)(:[^}]*)?\}", path)
    if match is None:
        return [path]
    filled: list[str] = []
    for value in _values(match.group(1)):
        filled += _fill(path[: match.start()] + value + path[match.end() :])
    return filled


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, methods) of every API route, through included routers (FastAPI >= 0.16x
    keeps them as wrappers of the original router)."""
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((prefix + route.path, set(route.methods)))
        elif hasattr(route, "original_router"):
            inner = prefix + getattr(route.include_context, "prefix", "")
            found += _routes(route.original_router.routes, inner)
    return found


def _values(param: str) -> tuple[str, ...]:
    for key, values in PATH_VALUES:
        if key in param:
            return values
    return ("S001",)


def leaks(payload: object, role: str, where: str = "$") -> list[str]:
    """What in a decoded JSON body this role must not see."""
    found: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            here = f"{where}.{key}"
            if key in TEMPERATURE_KEYS and value is not None:
                found.append(f"{here}: a temperature")
            if key in ("health_reason", "health_status") and value is not None:
                found.append(f"{here}: {key}")
            found += leaks(value, role, here)
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            found += leaks(value, role, f"{where}[{index}]")
    elif isinstance(payload, str):
        if any(s in payload for s in SENTINEL_TEXTS):
            found.append(f"{where}: a health reason")
        if role == "guard" and payload in STATUS_NAMES:
            found.append(f"{where}: health status {payload!r}")
    elif isinstance(payload, float) and payload in SENTINEL_TEMPERATURES:
        found.append(f"{where}: temperature {payload}")
    return found


def text_leaks(text: str) -> list[str]:
    """For CSV, HTML and other text bodies: the sentinel reasons and temperatures."""
    found = [f"text: health reason {s!r}" for s in SENTINEL_TEXTS if s in text]
    return found + [
        f"text: temperature {t}" for t in (EVENT_CELSIUS, ALERT_CELSIUS) if str(t) in text
    ]


def _xlsx_text(content: bytes) -> str:
    """Every XML part of a workbook, as one text to search."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return "\n".join(
            book.read(name).decode("utf-8", "replace")
            for name in book.namelist()
            if name.endswith(".xml")
        )


async def walk(app: Any, client: Any, role: str) -> tuple[dict[str, list[str]], list[str]]:
    """(leaks by path, paths that answered 200) for one role's client."""
    found: dict[str, list[str]] = {}
    reached: list[str] = []
    for path in get_paths(app):
        response = await client.get(path)
        if response.status_code == 422:
            response = await client.get(path, params=RETRY_QUERY)
        assert response.status_code < 500, f"{role} GET {path}: {response.status_code}"
        if response.status_code != 200:
            continue
        reached.append(path)
        kind = response.headers.get("content-type", "")
        if kind.startswith("application/json"):
            problems = leaks(response.json(), role)
        elif kind.startswith("text/") or "csv" in kind:
            problems = text_leaks(response.text)
        elif "spreadsheetml" in kind:
            problems = text_leaks(_xlsx_text(response.content))
        else:
            continue
        if problems:
            found[path] = problems
    return found, reached


@pytest.mark.parametrize("role", ["guard", "liaison"])
async def test_no_health_detail_reaches_guards_or_liaisons(client_for, privacy_app, role) -> None:
    found, reached = await walk(privacy_app, client_for(role), role)
    assert "/api/people/S001" in reached or role == "liaison"
    assert not found, json.dumps(found, indent=2)


async def test_the_walk_can_see_a_leak(client_for, privacy_app) -> None:
    """Health officers may see it all: the sentinels are there to be found."""
    found, reached = await walk(privacy_app, client_for("health_officer"), "guard")
    assert any("health reason" in p for p in found.get("/api/health/S001", []))
    if "/api/daily-reports/1/xlsx" in reached:  # the reports workflow is there
        assert any("health reason" in p for p in found["/api/daily-reports/1/xlsx"])
        assert any("health reason" in p for p in found["/api/daily-reports/1/csv"])
    admin_found, _ = await walk(privacy_app, client_for("admin"), "guard")
    assert any("temperature" in p for p in admin_found.get("/api/events", []))
    assert any("temperature" in p for p in admin_found.get("/api/alerts", []))


async def test_liaisons_see_their_people_and_guards_the_hold(client_for) -> None:
    liaison = (await client_for("liaison").get("/api/people/S001")).json()
    assert liaison["name"] == "Li Hua" and "health_reason" not in liaison
    guard = (await client_for("guard").get("/api/people/S001")).json()
    assert guard["health_hold"] is True and "health_status" not in guard
    events = (await client_for("liaison").get("/api/events")).json()
    assert [e["reason"] for e in events if e["event_id"] == "e-fever"] == ["withheld"]
    events = (await client_for("guard").get("/api/events")).json()
    fever = [e for e in events if e["event_id"] == "e-fever"]
    assert fever[0]["reason"] == "fever" and "celsius" not in fever[0]
