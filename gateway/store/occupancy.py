"""Who is inside each zone now, from admitted card passages in the access log.

A person is inside a zone when their last admitted passage of that zone was `in`
and it lies within the zone's presence horizon (gateway/domain/presence.py). The
gateway seeds its live counts from the same query at start, so counts survive a
restart and agree with the muster list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.presence import presence_horizon
from gateway.domain.roster import ZoneKind

# $1 now, $2 dormitory horizon, $3 other horizon, $4 zone id or NULL for all zones.
_INSIDE = """
WITH horizon AS (
    SELECT id, $1::timestamptz - CASE WHEN kind = 'dormitory' THEN $2::interval
                                      ELSE $3::interval END AS cutoff
    FROM zones WHERE $4::text IS NULL OR id = $4
),
last AS (
    SELECT DISTINCT ON (e.person_id, e.zone_id)
           e.person_id, e.zone_id, e.direction, e.received_at, e.door_id
    FROM access_events e
    WHERE e.type = 'card' AND e.decision = 'admit'
      AND e.person_id IS NOT NULL AND e.zone_id IS NOT NULL
      AND ($4::text IS NULL OR e.zone_id = $4)
      AND e.received_at >= $1::timestamptz - greatest($2::interval, $3::interval)
      AND e.received_at <= $1::timestamptz
    ORDER BY e.person_id, e.zone_id, e.received_at DESC
),
inside AS (
    SELECT l.* FROM last l JOIN horizon h ON h.id = l.zone_id
    WHERE l.direction = 'in' AND l.received_at >= h.cutoff
)
"""


def _args(now: datetime, max_stay_h: float, zone_id: str | None) -> tuple[object, ...]:
    return (
        now,
        presence_horizon(ZoneKind.DORMITORY, max_stay_h),
        presence_horizon(ZoneKind.OTHER, max_stay_h),
        zone_id,
    )


async def inside_entries(
    conn: asyncpg.Connection, now: datetime, max_stay_h: float
) -> list[tuple[str, str, datetime]]:
    """(zone, person, entered at) of everyone inside anywhere, oldest entry first."""
    rows = await conn.fetch(
        _INSIDE + "SELECT zone_id, person_id, received_at FROM inside ORDER BY received_at",
        *_args(now, max_stay_h, None),
    )
    return [(r[0], r[1], r[2]) for r in rows]


_ZONE_COLUMNS = """
z.id AS zone_id, z.name, z.kind, z.capacity, z.capacity_mode,
z.gathering_threshold, z.gathering_minutes
"""


async def zone_counts(
    conn: asyncpg.Connection, now: datetime, max_stay_h: float, zone_id: str | None = None
) -> list[dict[str, Any]]:
    """Per zone (or the one zone): its capacity settings and how many are inside."""
    rows = await conn.fetch(
        _INSIDE
        + f"""
        SELECT {_ZONE_COLUMNS}, count(i.person_id)::int AS inside
        FROM zones z LEFT JOIN inside i ON i.zone_id = z.id
        WHERE $4::text IS NULL OR z.id = $4
        GROUP BY z.id ORDER BY z.id
        """,
        *_args(now, max_stay_h, zone_id),
    )
    return [dict(r) for r in rows]


async def muster(
    conn: asyncpg.Connection, zone_id: str, now: datetime, max_stay_h: float
) -> list[dict[str, Any]]:
    """Who is inside the zone: person, name, kind, org unit, since, the door they came in by.

    Everyone the zone count counts, a row each: a person since removed from the roster
    stays on the list (name empty) rather than vanish from a muster that must match it.
    """
    rows = await conn.fetch(
        _INSIDE
        + """
        SELECT i.person_id, p.name, p.kind, p.org_unit_id, o.name AS org_unit_name,
               i.received_at AS since, i.door_id, d.name AS door_name
        FROM inside i
        LEFT JOIN people p ON p.id = i.person_id
        LEFT JOIN org_units o ON o.id = p.org_unit_id
        LEFT JOIN doors d ON d.id = i.door_id
        ORDER BY i.received_at, i.person_id
        """,
        *_args(now, max_stay_h, zone_id),
    )
    return [dict(r) for r in rows]
