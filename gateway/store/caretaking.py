"""Caretakers: who may look after isolated people, how many each has, and their cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.health import ISOLATION_STATUSES

_ISOLATION = [s.value for s in ISOLATION_STATUSES]


@dataclass(frozen=True, slots=True)
class CaretakerCandidate:
    """An active staff person, their org unit and how many isolation cases they hold now."""

    person_id: str
    org_unit_id: str | None
    load: int


async def org_parents(conn: asyncpg.Connection) -> dict[str, str | None]:
    """Every org unit's parent (None at the roots)."""
    return {r[0]: r[1] for r in await conn.fetch("SELECT id, parent_id FROM org_units")}


async def org_units_of(
    conn: asyncpg.Connection, person_ids: Sequence[str]
) -> dict[str, str | None]:
    """The org unit of each named person that exists (unknown people are left out)."""
    rows = await conn.fetch(
        "SELECT id, org_unit_id FROM people WHERE id = ANY($1::text[])", list(person_ids)
    )
    return {r[0]: r[1] for r in rows}


async def caretaker_candidates(conn: asyncpg.Connection, now: datetime) -> list[CaretakerCandidate]:
    """Active, still-valid staff with their current load (isolation cases not yet expired)."""
    rows = await conn.fetch(
        """
        SELECT p.id, p.org_unit_id, count(h.person_id) AS load
        FROM people p
        LEFT JOIN health_status h
          ON h.caretaker_id = p.id AND h.status = ANY($1::text[])
         AND (h.until IS NULL OR h.until > $2)
        WHERE p.kind = 'staff' AND p.active AND (p.valid_until IS NULL OR p.valid_until > $2)
        GROUP BY p.id, p.org_unit_id
        """,
        _ISOLATION,
        now,
    )
    return [CaretakerCandidate(r[0], r[1], int(r[2])) for r in rows]


async def is_active_staff(conn: asyncpg.Connection, person_id: str, now: datetime) -> str | None:
    """None when `person_id` may be a caretaker, else why not (one line)."""
    row = await conn.fetchrow(
        "SELECT kind, active, valid_until FROM people WHERE id = $1", person_id
    )
    if row is None:
        return f"no person {person_id!r}"
    if row[0] != "staff":
        return f"caretaker {person_id!r} is not staff"
    if not row[1] or (row[2] is not None and row[2] <= now):
        return f"caretaker {person_id!r} is not active"
    return None


async def caretaker_cases(
    conn: asyncpg.Connection, now: datetime, *, caretaker_id: str | None, org_scope: str | None
) -> list[dict[str, Any]]:
    """Current isolation cases (not yet expired) with their caretaker, person and phone if known,
    and the person's last `isolation_breach` since the status began (when, which door,
    which way; None when there was none).

    `org_scope` limits the cases to people of that org unit's subtree (None: all).
    """
    rows = await conn.fetch(
        """
        WITH RECURSIVE scope AS (
            SELECT id FROM org_units WHERE id = $4
            UNION ALL
            SELECT o.id FROM org_units o JOIN scope s ON o.parent_id = s.id
        )
        SELECT h.caretaker_id, c.name AS caretaker_name, h.person_id, p.name,
               p.org_unit_id, h.status, h.since, h.until, p.phone,
               b.ts AS last_breach_at, b.door AS last_breach_door,
               b.detail ->> 'direction' AS last_breach_direction
        FROM health_status h
        JOIN people p ON p.id = h.person_id
        LEFT JOIN people c ON c.id = h.caretaker_id
        LEFT JOIN LATERAL (
            SELECT a.ts, a.door, a.detail FROM alerts a
            WHERE a.person = h.person_id AND a.kind = 'isolation_breach' AND a.ts >= h.since
            ORDER BY a.ts DESC LIMIT 1
        ) b ON true
        WHERE h.status = ANY($1::text[]) AND (h.until IS NULL OR h.until > $2)
          AND ($3::text IS NULL OR h.caretaker_id = $3)
          AND ($4::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
        ORDER BY h.caretaker_id NULLS LAST, h.since, h.person_id
        """,
        _ISOLATION,
        now,
        caretaker_id,
        org_scope,
    )
    return [dict(r) for r in rows]
