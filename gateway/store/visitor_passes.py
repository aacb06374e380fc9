"""Visitor passes: requests, decisions, and the overstay watch's query (rows as dicts).

The door path never reads this table: an approved pass is written into the roster
(services.visitor_passes), which the gateways reload on its NOTIFY.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from gateway.store.org_tree import subtree_cte

COLUMNS = (
    "id, host_id, host_unit_id, visitor_name, phone, id_number, reason, zones, starts_at,"
    " ends_at, places, area_matches, status, requested_by, requested_at, decided_by,"
    " decided_at, note, visitor_person_id, card_uid, overstay_alerted_at"
)


async def host_of(conn: asyncpg.Connection, person_id: str) -> tuple[str, str | None, bool] | None:
    """(kind, org unit, active) of a would-be host; None when no such person."""
    row = await conn.fetchrow(
        "SELECT kind, org_unit_id, active FROM people WHERE id = $1", person_id
    )
    return (row[0], row[1], bool(row[2])) if row else None


async def missing_zones(conn: asyncpg.Connection, zones: Sequence[str]) -> list[str]:
    """Those of `zones` that are not in the roster, in the order given."""
    known = {
        r[0] for r in await conn.fetch("SELECT id FROM zones WHERE id = ANY($1::text[])", zones)
    }
    return [z for z in zones if z not in known]


async def lab_zones(conn: asyncpg.Connection, zones: Sequence[str]) -> list[str]:
    """Those of `zones` whose kind is `lab`, sorted."""
    rows = await conn.fetch(
        "SELECT id FROM zones WHERE id = ANY($1::text[]) AND kind = 'lab' ORDER BY id", zones
    )
    return [r[0] for r in rows]


async def insert_pass(conn: asyncpg.Connection, values: dict[str, Any]) -> int:
    names = list(values)
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    new_id: int = await conn.fetchval(
        f"INSERT INTO visitor_passes ({', '.join(names)}) VALUES ({marks}) RETURNING id",
        *values.values(),
    )
    return new_id


async def get_pass(
    conn: asyncpg.Connection, pass_id: int, *, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM visitor_passes WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        pass_id,
    )
    return dict(row) if row else None


async def unit_in_scope(conn: asyncpg.Connection, unit: str | None, scope: str) -> bool:
    """Whether org unit `unit` lies in the subtree of `scope` (a liaison's unit)."""
    if unit is None or not scope:
        return False
    return bool(
        await conn.fetchval(
            subtree_cte(1) + "SELECT EXISTS (SELECT 1 FROM scope WHERE id = $2)", scope, unit
        )
    )


async def list_passes(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    host_id: str | None,
    org_scope: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Passes by filter, newest first; `org_scope` confines them to hosts' units under it."""
    scoped = org_scope is not None
    rows = await conn.fetch(
        subtree_cte(1) + f"SELECT {COLUMNS} FROM visitor_passes"
        " WHERE ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR host_id = $3)"
        " AND (NOT $4 OR host_unit_id IN (SELECT id FROM scope))"
        " ORDER BY id DESC LIMIT $5 OFFSET $6",
        org_scope or "",
        status,
        host_id,
        scoped,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def set_decision(
    conn: asyncpg.Connection,
    pass_id: int,
    status: str,
    *,
    by: str,
    note: str | None,
    visitor_person_id: str | None = None,
    card_uid: str | None = None,
) -> None:
    await conn.execute(
        "UPDATE visitor_passes SET status = $2, decided_by = $3, decided_at = now(), note = $4,"
        " visitor_person_id = coalesce($5, visitor_person_id),"
        " card_uid = coalesce($6, card_uid) WHERE id = $1",
        pass_id,
        status,
        by,
        note,
        visitor_person_id,
        card_uid,
    )


async def card_taken(conn: asyncpg.Connection, uid: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cards WHERE uid = $1)", uid))


# Passes over whose visitor's last admitted passage, in one of the pass's zones since the
# pass began, was `in`: still inside after the end. $1 now, $2 how far back ends count.
_OVERSTAYS = """
SELECT p.id, p.visitor_person_id, p.host_unit_id, p.ends_at, l.zone_id, l.door_id,
       l.received_at
FROM visitor_passes p
JOIN LATERAL (
    SELECT DISTINCT ON (e.zone_id) e.zone_id, e.door_id, e.direction, e.received_at
    FROM access_events e
    WHERE e.person_id = p.visitor_person_id AND e.type = 'card' AND e.decision = 'admit'
      AND e.zone_id = ANY(p.zones) AND e.received_at >= p.starts_at
    ORDER BY e.zone_id, e.received_at DESC
) l ON l.direction = 'in'
WHERE p.visitor_person_id IS NOT NULL AND p.status IN ('approved', 'revoked')
  AND p.overstay_alerted_at IS NULL AND p.ends_at <= $1 AND p.ends_at > $1 - $2::interval
ORDER BY p.id, l.received_at
"""


async def overstays(conn: asyncpg.Connection, now: datetime, lookback: Any) -> list[dict[str, Any]]:
    """Ended passes whose visitor is still inside one of their zones (one row a zone)."""
    return [dict(r) for r in await conn.fetch(_OVERSTAYS, now, lookback)]


async def claim_overstay(conn: asyncpg.Connection, pass_id: int, now: datetime) -> bool:
    """Mark a pass's overstay alerted; False when another run did first (once per pass)."""
    status = await conn.execute(
        "UPDATE visitor_passes SET overstay_alerted_at = $2"
        " WHERE id = $1 AND overstay_alerted_at IS NULL",
        pass_id,
        now,
    )
    return status.endswith(" 1")


async def passes_of_person(conn: asyncpg.Connection, person_id: str) -> list[dict[str, Any]]:
    """Passes the person hosted or held as the visitor (for their export)."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM visitor_passes WHERE host_id = $1 OR visitor_person_id = $1"
        " ORDER BY id",
        person_id,
    )
    return [dict(r) for r in rows]
