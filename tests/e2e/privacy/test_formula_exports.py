"""Exports are data, never formulas: a person named `=HYPERLINK(...)` comes out as text in
the contact-tracing CSV (API and CLI) and the muster CSV, read back as a spreadsheet would."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from api.app import create_app
from gateway.cli import main
from gateway.domain.spreadsheet import safe_cell, safe_text
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations
from gateway.store.operators import add_operator

EVIL_NAME = '=HYPERLINK("http://x","y")'
MANIFEST = f"""
org_units:
  - {{id: cs, name: "+cmd|' /C calc'!A0"}}
zones:
  - {{id: hall, name: Lecture hall, kind: teaching}}
doors:
  - {{id: hall-door, zone: hall, direction: in}}
devices:
  - {{id: term-hall, door: hall-door, kind: terminal, transport: mqtt}}
people:
  - {{id: S1, kind: student, name: Seed Person, org_unit: cs, cards: ["04000001"]}}
  - {{id: S2, kind: student, name: '{EVIL_NAME}', org_unit: cs, cards: ["04000002"]}}
grants:
  - {{subject: {{org_unit: cs}}, zone: hall}}
"""


@pytest.fixture(scope="module")
async def world(database_factory, tmp_path_factory) -> tuple[str, str]:
    dsn = await asyncio.to_thread(database_factory, "formulas")
    await apply_migrations(dsn)
    path = Path(tmp_path_factory.mktemp("formulas")) / "campus.yaml"
    path.write_text(MANIFEST)
    conn = await connect(dsn)
    try:
        await import_file(conn, path, tz=Settings().tz, operator="test")
        token = await add_operator(conn, "officer", "health_officer")
        now = datetime.now(UTC)
        for person, card, ago in (("S1", "04000001", 20), ("S2", "04000002", 18)):
            at = now - timedelta(minutes=ago)
            await conn.execute(
                "INSERT INTO access_events (event_id, device_id, door_id, zone_id, device_ts, "
                "received_at, type, card_uid, person_id, direction, decision, reason) "
                "VALUES ($1, 'term-hall', 'hall-door', 'hall', $2, $2, 'card', $3, $4, 'in', "
                "'admit', 'ok')",
                f"ev-{uuid.uuid4().hex[:10]}",
                at,
                card,
                person,
            )
    finally:
        await conn.close()
    return dsn, token


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def _is_data(cell: str) -> bool:
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


async def _get(dsn: str, token: str, path: str) -> httpx.Response:
    app = create_app(Settings(database_url=dsn), dsn)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        return await client.get(path)


async def test_tracing_csv_over_the_api_neutralises_a_formula_name(world):
    dsn, token = world
    response = await _get(dsn, token, "/api/tracing/S1?days=1&format=csv")
    assert response.status_code == 200, response.text
    rows = _rows(response.text)
    contact = next(r for r in rows if r["person_id"] == "S2")
    assert contact["name"] == "'" + EVIL_NAME
    assert all(_is_data(cell) for row in rows for cell in row.values())
    assert float(contact["exposure_s"]) > 0  # numbers stay numbers


async def test_muster_csv_neutralises_formula_names_and_units(world):
    dsn, token = world
    response = await _get(dsn, token, "/api/zones/hall/muster?format=csv")
    assert response.status_code == 200, response.text
    rows = _rows(response.text)
    assert {r["name"] for r in rows} >= {"'" + EVIL_NAME, "Seed Person"}
    assert all(r["org_unit_name"].startswith("'+cmd") for r in rows)
    assert all(_is_data(cell) for row in rows for cell in row.values())


def test_trace_cli_csv_neutralises_a_formula_name(world, tmp_path):
    dsn, _ = world
    out = tmp_path / "contacts.csv"
    result = CliRunner().invoke(
        main, ["--database-url", dsn, "trace", "S1", "--days", "1", "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    contact = next(r for r in _rows(out.read_text()) if r["person_id"] == "S2")
    assert contact["name"] == "'" + EVIL_NAME


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EVIL_NAME, "'" + EVIL_NAME),
        ("=2+3", "'=2+3"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Li Hua", "Li Hua"),
        ("", ""),
        (-1, -1),
        (2.5, 2.5),
        (None, None),
        (True, True),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_an_xlsx_cell_written_safe_reads_back_as_text(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append([safe_cell(EVIL_NAME), safe_cell("=2+3"), safe_cell(-3)])
    path = tmp_path / "x.xlsx"
    book.save(path)
    cells = next(load_workbook(path).active.iter_rows(values_only=True))
    assert cells == ("'" + EVIL_NAME, "'=2+3", -3)
    assert safe_text("=x") == "'=x"
