"""Manual temperature re-measurements (health_readings) and who awaits one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, person_id, celsius::float8 AS celsius, fever, measured_at, recorded_by, note"


async def insert_reading(
    conn: asyncpg.Connection,
    person_id: str,
    celsius: float,
    *,
    fever: bool,
    measured_at: datetime,
    by: str,
    note: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO health_readings (person_id, celsius, fever, measured_at, recorded_by, note) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        person_id,
        round(celsius, 1),
        fever,
        measured_at,
        by,
        note,
    )
    return dict(row)


async def readings_of(
    conn: asyncpg.Connection, person_id: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The person's readings, newest first (only those measured at or after `since`)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM health_readings "
        "WHERE person_id = $1 AND ($2::timestamptz IS NULL OR measured_at >= $2) "
        "ORDER BY measured_at DESC, id DESC",
        person_id,
        since,
    )
    return [dict(r) for r in rows]


async def latest_watch_reading(conn: asyncpg.Connection, person_id: str) -> dict[str, Any] | None:
    """The newest re-measurement since the person's current fever_watch began, or None."""
    row = await conn.fetchrow(
        """
        SELECT r.id, r.person_id, r.celsius::float8 AS celsius, r.fever, r.measured_at,
               r.recorded_by, r.note
        FROM health_readings r JOIN health_status h ON h.person_id = r.person_id
        WHERE r.person_id = $1 AND h.status = 'fever_watch' AND r.measured_at >= h.since
        ORDER BY r.measured_at DESC, r.id DESC LIMIT 1
        """,
        person_id,
    )
    return None if row is None else dict(row)


async def fever_watch_people(
    conn: asyncpg.Connection, now: datetime, *, q: str | None, limit: int
) -> list[dict[str, Any]]:
    """People on fever_watch now (no reason: guards read this) with their reading count."""
    rows = await conn.fetch(
        """
        SELECT h.person_id, p.name, p.org_unit_id, h.since,
               (SELECT count(*) FROM health_readings r
                 WHERE r.person_id = h.person_id AND r.measured_at >= h.since) AS readings
        FROM health_status h JOIN people p ON p.id = h.person_id
        WHERE h.status = 'fever_watch' AND (h.until IS NULL OR h.until > $1)
          AND ($2::text IS NULL OR p.id ILIKE '%' || $2 || '%' OR p.name ILIKE '%' || $2 || '%')
        ORDER BY h.since, h.person_id LIMIT $3
        """,
        now,
        q,
        limit,
    )
    return [dict(r) for r in rows]


async def fever_review(conn: asyncpg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Fever_watch people with their readings since the watch began (health officers)."""
    people = await fever_watch_people(conn, now, q=None, limit=1000)
    for person in people:
        person["readings"] = await readings_of(conn, person["person_id"], since=person["since"])
    return people
