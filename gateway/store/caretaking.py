"""Caretakers: who may look after isolated people, how many each has, and their cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.health import ISOLATION_STATUSES, HealthStatus
from gateway.store.org_tree import subtree_cte

_ISOLATION = [s.value for s in ISOLATION_STATUSES]
# Statuses that hold nobody (contract section 4): anyone under another one is held.
_FREE = [s.value for s in HealthStatus if not s.blocks_entry]


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
    """Active, still-valid staff under no hold, with their current load (isolation cases
    not yet expired). Staff who are themselves held cannot visit anyone."""
    rows = await conn.fetch(
        """
        SELECT p.id, p.org_unit_id, count(h.person_id) AS load
        FROM people p
        LEFT JOIN health_status h
          ON h.caretaker_id = p.id AND h.status = ANY($1::text[])
         AND (h.until IS NULL OR h.until > $2)
        WHERE p.kind = 'staff' AND p.active AND (p.valid_until IS NULL OR p.valid_until > $2)
          AND NOT EXISTS (  -- held: a status that blocks entry and has not reached its until
              SELECT 1 FROM health_status hs
              WHERE hs.person_id = p.id AND hs.status <> ALL($3::text[])
                AND (hs.until IS NULL OR hs.until > $2))
        GROUP BY p.id, p.org_unit_id
        """,
        _ISOLATION,
        now,
        _FREE,
    )
    return [CaretakerCandidate(r[0], r[1], int(r[2])) for r in rows]


async def caretaker_problem(conn: asyncpg.Connection, person_id: str, now: datetime) -> str | None:
    """None when `person_id` may be a caretaker (active staff under no hold), else why
    not (one line, saying what to do)."""
    row = await conn.fetchrow(
        """
        SELECT p.kind, p.active, p.valid_until, h.status, h.until
        FROM people p LEFT JOIN health_status h ON h.person_id = p.id
        WHERE p.id = $1
        """,
        person_id,
    )
    if row is None:
        return f"no person {person_id!r}"
    if row[0] != "staff":
        return f"caretaker {person_id!r} is not staff"
    if not row[1] or (row[2] is not None and row[2] <= now):
        return f"caretaker {person_id!r} is not active"
    return held_caretaker_problem(person_id, row[3], row[4], now)


def held_caretaker_problem(
    person_id: str, status: str | None, until: datetime | None, now: datetime
) -> str | None:
    """Why a caretaker under this status cannot care (None when the status holds nobody)."""
    if status is None or status in _FREE or (until is not None and until <= now):
        return None
    held = "" if until is None else f" until {until.isoformat()}"
    return (
        f"caretaker {person_id!r} is {status}{held} and cannot care for anyone: "
        "name another, or leave it out to have one chosen"
    )


@dataclass(frozen=True, slots=True)
class HeldCase:
    """An isolation case whose caretaker is now under a hold."""

    person_id: str
    caretaker_id: str
    caretaker_status: str


async def cases_of_held_caretakers(
    conn: asyncpg.Connection, now: datetime, caretaker_ids: Sequence[str] | None = None
) -> list[HeldCase]:
    """Current isolation cases (not yet expired) whose caretaker is held at `now`; only
    of `caretaker_ids` when given. By person id."""
    rows = await conn.fetch(
        """
        SELECT h.person_id, h.caretaker_id, c.status
        FROM health_status h
        JOIN health_status c ON c.person_id = h.caretaker_id
        WHERE h.status = ANY($1::text[]) AND (h.until IS NULL OR h.until > $2)
          AND c.status <> ALL($3::text[]) AND (c.until IS NULL OR c.until > $2)
          AND ($4::text[] IS NULL OR h.caretaker_id = ANY($4::text[]))
        ORDER BY h.person_id
        """,
        _ISOLATION,
        now,
        _FREE,
        None if caretaker_ids is None else list(caretaker_ids),
    )
    return [HeldCase(r[0], r[1], r[2]) for r in rows]


async def reassign_caretaker(
    conn: asyncpg.Connection,
    person_id: str,
    caretaker_id: str | None,
    *,
    reason: str,
    changed_by: str,
) -> None:
    """Give the person's current status another caretaker (or none), with a history row
    whose reason says why; status, since, until and set_by stay as they are."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE health_status SET caretaker_id = $2, updated_at = now() WHERE person_id = $1",
            person_id,
            caretaker_id,
        )
        await conn.execute(
            """
            INSERT INTO health_history
                (person_id, status, since, until, reason, caretaker_id, set_by, changed_by)
            SELECT person_id, status, since, until, $2, caretaker_id, set_by, $3
            FROM health_status WHERE person_id = $1
            """,
            person_id,
            reason,
            changed_by,
        )


async def caretaker_cases(
    conn: asyncpg.Connection, now: datetime, *, caretaker_id: str | None, org_scope: str | None
) -> list[dict[str, Any]]:
    """Current isolation cases (not yet expired) with their caretaker, person and phone if known,
    and the person's last `isolation_breach` since the status began (when, which door,
    which way; None when there was none).

    `org_scope` limits the cases to people of that org unit's subtree (None: all).
    """
    rows = await conn.fetch(
        subtree_cte(4)
        + """
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
