"""Occupancy and muster lists for the API: counts with the rules in force, and who is inside."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.spreadsheet import safe_cell
from gateway.services.levels import effective_rules
from gateway.store import occupancy as store

MUSTER_CSV_HEADER = (
    "person_id",
    "name",
    "kind",
    "org_unit_id",
    "org_unit_name",
    "since",
    "door_id",
    "door_name",
)


async def zone_occupancy(
    conn: asyncpg.Connection, now: datetime, max_stay_h: float, zone_id: str | None = None
) -> list[dict[str, Any]]:
    """Per zone: who counts inside, its capacity as configured and as in force now."""
    rows = await store.zone_counts(conn, now, max_stay_h, zone_id)
    rules = await effective_rules(conn, rows)
    for row in rows:
        zone_rules = rules[row["zone_id"]]
        row["effective_capacity"] = zone_rules.capacity
        row["levels"] = list(zone_rules.levels)
        capacity = zone_rules.capacity
        row["full"] = capacity is not None and row["inside"] >= capacity
        row["gathering"] = (
            row["gathering_threshold"] is not None and row["inside"] >= row["gathering_threshold"]
        )
    return rows


async def muster(
    conn: asyncpg.Connection, zone_id: str, now: datetime, max_stay_h: float
) -> list[dict[str, Any]]:
    return await store.muster(conn, zone_id, now, max_stay_h)


def _cell(value: object) -> object:
    # A name such as "=HYPERLINK(...)" must stay text in a spreadsheet program.
    cell = safe_cell(value)
    return "" if cell is None else cell


def muster_csv(rows: list[dict[str, Any]]) -> str:
    """The muster list as CSV, a row per person inside."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MUSTER_CSV_HEADER)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in MUSTER_CSV_HEADER])
    return out.getvalue()
