"""Read queries for the operator API and the guard console.

Rows leave as plain dicts of JSON-friendly values (never asyncpg records). Liaison
scoping takes `org_scope`: an org unit id whose subtree the caller may see (None: all).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

_SUBTREE = """
WITH RECURSIVE scope AS (
    SELECT id FROM org_units WHERE id = $1
    UNION ALL
    SELECT o.id FROM org_units o JOIN scope s ON o.parent_id = s.id
)
"""


def _dicts(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def names_of(conn: asyncpg.Connection, ids: Iterable[str | None]) -> dict[str, str]:
    """The names of the people among `ids` (unknown ids and None are left out)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await conn.fetch("SELECT id, name FROM people WHERE id = ANY($1::text[])", wanted)
    return {r[0]: r[1] for r in rows}


async def zone_names_of(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The names of the zones among `ids` (unknown ids are left out)."""
    rows = await conn.fetch(
        "SELECT id, name FROM zones WHERE id = ANY($1::text[])", sorted(set(ids))
    )
    return {r[0]: r[1] for r in rows}


async def org_subtree(conn: asyncpg.Connection, org_unit_id: str) -> list[str]:
    """The org unit and every unit under it."""
    rows = await conn.fetch(_SUBTREE + "SELECT id FROM scope", org_unit_id)
    return [r[0] for r in rows]


async def list_org_units(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT id, name, parent_id FROM org_units ORDER BY parent_id NULLS FIRST, id"
        )
    )


_ZONE_COLUMNS = "id, name, kind, capacity, capacity_mode, gathering_threshold, gathering_minutes"


async def list_zones(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return _dicts(await conn.fetch(f"SELECT {_ZONE_COLUMNS} FROM zones ORDER BY id"))


async def get_zone(conn: asyncpg.Connection, zone_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_ZONE_COLUMNS} FROM zones WHERE id = $1", zone_id)
    return dict(row) if row else None


_DOORS = """
SELECT d.id, d.name, d.zone_id, d.direction, d.requires_temperature,
       count(v.id)::int AS devices,
       count(v.id) FILTER (WHERE coalesce(s.online, false))::int AS devices_online
FROM doors d LEFT JOIN devices v ON v.door_id = d.id LEFT JOIN device_status s ON s.device_id = v.id
"""


async def list_doors(conn: asyncpg.Connection, zone_id: str | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _DOORS + " WHERE ($1::text IS NULL OR d.zone_id = $1) GROUP BY d.id ORDER BY d.id", zone_id
    )
    return _dicts(rows)


async def get_door(conn: asyncpg.Connection, door_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_DOORS + " WHERE d.id = $1 GROUP BY d.id", door_id)
    return dict(row) if row else None


_DEVICES = """
SELECT v.id, v.door_id, d.name AS door_name, d.zone_id, v.kind, v.transport, v.port, v.protocol,
       coalesce(s.online, false) AS online, s.last_seen, s.firmware
FROM devices v JOIN doors d ON d.id = v.door_id LEFT JOIN device_status s ON s.device_id = v.id
"""


async def list_devices(
    conn: asyncpg.Connection, *, online: bool | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _DEVICES + " WHERE ($1::boolean IS NULL OR coalesce(s.online, false) = $1) ORDER BY v.id",
        online,
    )
    return _dicts(rows)


async def get_device(conn: asyncpg.Connection, device_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_DEVICES + " WHERE v.id = $1", device_id)
    return dict(row) if row else None


_PEOPLE = """
SELECT p.id, p.kind, p.name, p.org_unit_id, p.active, p.valid_until, p.phone, p.id_number,
       coalesce(array_agg(c.uid ORDER BY c.uid) FILTER (WHERE c.uid IS NOT NULL), '{}') AS cards,
       h.status AS health_status, h.since AS health_since, h.until AS health_until,
       h.reason AS health_reason, h.caretaker_id AS health_caretaker
FROM people p LEFT JOIN cards c ON c.person_id = p.id LEFT JOIN health_status h ON h.person_id = p.id
"""


async def search_people(
    conn: asyncpg.Connection,
    *,
    q: str | None,
    org_scope: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """People matching `q` (name substring, id prefix or card uid), with total count."""
    where = """
    WHERE ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
      AND ($1::text IS NULL OR p.name ILIKE '%' || $1 || '%' OR p.id ILIKE $1 || '%'
           OR EXISTS (SELECT 1 FROM cards k WHERE k.person_id = p.id AND k.uid = upper($1)))
    """
    subtree = _SUBTREE.replace("$1", "$2")
    total = await conn.fetchval(
        subtree + "SELECT count(*) FROM people p " + where, q or None, org_scope
    )
    rows = await conn.fetch(
        subtree
        + _PEOPLE
        + where
        + " GROUP BY p.id, h.person_id ORDER BY p.name, p.id LIMIT $3 OFFSET $4",
        q or None,
        org_scope,
        limit,
        offset,
    )
    return int(total), _dicts(rows)


async def get_person(conn: asyncpg.Connection, person_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_PEOPLE + " WHERE p.id = $1 GROUP BY p.id, h.person_id", person_id)
    return dict(row) if row else None


async def person_org_unit(conn: asyncpg.Connection, person_id: str) -> tuple[bool, str | None]:
    """(exists, org_unit_id) of a person."""
    row = await conn.fetchrow("SELECT org_unit_id FROM people WHERE id = $1", person_id)
    return (row is not None, row[0] if row else None)


_GRANTS = """
SELECT id, subject_person, subject_org_unit, subject_kind, zone_id, schedule, valid_from, valid_until
FROM grants
"""


async def list_grants(
    conn: asyncpg.Connection, *, zone_id: str | None = None, person_id: str | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _GRANTS
        + " WHERE ($1::text IS NULL OR zone_id = $1) AND ($2::text IS NULL OR subject_person = $2)"
        " ORDER BY id",
        zone_id,
        person_id,
    )
    return _dicts(rows)


async def get_grant(conn: asyncpg.Connection, grant_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(_GRANTS + " WHERE id = $1", grant_id)
    return dict(row) if row else None


async def insert_grant(conn: asyncpg.Connection, grant: dict[str, Any]) -> dict[str, Any]:
    """Insert a grant; raises asyncpg.UniqueViolationError / ForeignKeyViolationError."""
    row = await conn.fetchrow(
        "INSERT INTO grants (subject_person, subject_org_unit, subject_kind, zone_id, schedule,"
        " valid_from, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        grant.get("subject_person"),
        grant.get("subject_org_unit"),
        grant.get("subject_kind"),
        grant["zone_id"],
        grant.get("schedule"),
        grant.get("valid_from"),
        grant.get("valid_until"),
    )
    created = await get_grant(conn, row[0])
    assert created is not None
    return created


async def delete_grant(conn: asyncpg.Connection, grant_id: int) -> None:
    await conn.execute("DELETE FROM grants WHERE id = $1", grant_id)


async def health_of(conn: asyncpg.Connection, person_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT person_id, status, since, until, reason, caretaker_id, set_by "
        "FROM health_status WHERE person_id = $1",
        person_id,
    )
    return dict(row) if row else None


async def list_health(
    conn: asyncpg.Connection, *, status: str | None, org_scope: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SUBTREE
        + """
        SELECT h.person_id, p.name, p.org_unit_id, h.status, h.since, h.until, h.reason,
               h.caretaker_id, c.name AS caretaker_name, h.set_by
        FROM health_status h JOIN people p ON p.id = h.person_id
        LEFT JOIN people c ON c.id = h.caretaker_id
        WHERE ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
          AND ($3::text IS NULL OR h.status = $3)
        ORDER BY h.since DESC LIMIT $4 OFFSET $5
        """,
        org_scope,
        org_scope,
        status,
        limit,
        offset,
    )
    return _dicts(rows)


# Display names beside the ids (the console shows names, ids on hover); a derived table so
# callers filter on the alert's own columns without qualifying them.
_ALERTS = """
SELECT * FROM (
    SELECT a.id, a.kind, a.severity, a.ts, a.door, a.zone, a.device, a.person, a.detail,
           a.status, d.name AS door_name, z.name AS zone_name, p.name AS person_name
    FROM alerts a
    LEFT JOIN doors d ON d.id = a.door
    LEFT JOIN zones z ON z.id = a.zone
    LEFT JOIN people p ON p.id = a.person
) AS alerts
"""


async def list_alerts(
    conn: asyncpg.Connection,
    *,
    kinds: list[str] | None,
    severity: str | None,
    zone: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    org_scope: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts by filter; with `org_scope`, only those about people of that subtree."""
    rows = await conn.fetch(
        _SUBTREE.replace("$1", "$9")
        + _ALERTS
        + """
        WHERE ($1::text[] IS NULL OR kind = ANY($1)) AND ($2::text IS NULL OR severity = $2)
          AND ($3::text IS NULL OR zone = $3) AND ($4::text IS NULL OR status = $4)
          AND ($5::timestamptz IS NULL OR ts >= $5) AND ($6::timestamptz IS NULL OR ts < $6)
          AND ($9::text IS NULL OR person IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
        ORDER BY ts DESC, id LIMIT $7 OFFSET $8
        """,
        kinds,
        severity,
        zone,
        status,
        since,
        until,
        limit,
        offset,
        org_scope,
    )
    return _dicts(rows)


async def get_alert(conn: asyncpg.Connection, alert_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_ALERTS + " WHERE id = $1", alert_id)
    return dict(row) if row else None


async def alert_history(conn: asyncpg.Connection, alert_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, status, operator, note, ts FROM alert_history WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )
    return _dicts(rows)


_CHANGES = """
SELECT f.seq AS cursor, h.status AS change, h.operator, h.note, h.ts AS changed_at,
       a.id, a.kind, a.severity, a.ts, a.door, a.zone, a.device, a.person, a.detail, a.status,
       p.org_unit_id AS person_org_unit, p.name AS person_name, d.name AS door_name,
       z.name AS zone_name
FROM alert_feed f JOIN alert_history h ON h.id = f.history_id JOIN alerts a ON a.id = h.alert_id
LEFT JOIN people p ON p.id = a.person
LEFT JOIN doors d ON d.id = a.door
LEFT JOIN zones z ON z.id = a.zone
"""


async def alert_change(conn: asyncpg.Connection, cursor: int) -> dict[str, Any] | None:
    """One lifecycle step (by its feed cursor) with its alert as it is now."""
    row = await conn.fetchrow(_CHANGES + " WHERE f.seq = $1", cursor)
    return dict(row) if row else None


async def alert_changes_after(
    conn: asyncpg.Connection, *, cursor: int | None, since: datetime | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Steps after a cursor or a commit time, in commit order: what a console missed.

    The cursor is the alert feed's sequence number (migration 0007), assigned in commit
    order, so everything at or below a cursor a client has seen was already visible.
    """
    rows = await conn.fetch(
        _CHANGES + " WHERE ($1::bigint IS NULL OR f.seq > $1)"
        " AND ($2::timestamptz IS NULL OR f.committed_at > $2)"
        " ORDER BY f.seq LIMIT $3",
        cursor,
        since,
        limit,
    )
    return _dicts(rows)


async def alert_cursor(conn: asyncpg.Connection) -> int:
    """The newest feed cursor: a list read after this is complete up to it."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_feed"))


async def list_access_events(
    conn: asyncpg.Connection,
    *,
    person: str | None,
    door: str | None,
    zone: str | None,
    decision: str | None,
    since: datetime | None,
    until: datetime | None,
    org_scope: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SUBTREE
        + """
        SELECT e.device_id, e.event_id, e.type, e.device_ts, e.received_at, e.door_id, e.zone_id,
               e.person_id, e.card_uid, e.direction, e.celsius, e.decision, e.reason
        FROM access_events e
        WHERE ($2::text IS NULL OR e.person_id IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
          AND ($3::text IS NULL OR e.person_id = $3) AND ($4::text IS NULL OR e.door_id = $4)
          AND ($5::text IS NULL OR e.zone_id = $5) AND ($6::text IS NULL OR e.decision = $6)
          AND ($7::timestamptz IS NULL OR e.received_at >= $7)
          AND ($8::timestamptz IS NULL OR e.received_at < $8)
        ORDER BY e.received_at DESC LIMIT $9 OFFSET $10
        """,
        org_scope,
        org_scope,
        person,
        door,
        zone,
        decision,
        since,
        until,
        limit,
        offset,
    )
    return _dicts(rows)


async def counts_since(
    conn: asyncpg.Connection, since: datetime, org_scope: str | None = None
) -> dict[str, Any]:
    """Admitted, denied by reason, fevers and alerts by kind since `since`."""
    rows = await conn.fetch(
        _SUBTREE
        + """
        SELECT decision, reason, count(*)::int FROM access_events e
        WHERE e.received_at >= $2 AND e.type = 'card' AND e.decision IN ('admit', 'deny')
          AND ($1::text IS NULL OR e.person_id IN
                  (SELECT id FROM people WHERE org_unit_id IN (SELECT id FROM scope)))
        GROUP BY decision, reason
        """,
        org_scope,
        since,
    )
    admitted = sum(r[2] for r in rows if r[0] == "admit")
    denied = {r[1]: r[2] for r in rows if r[0] == "deny"}
    alerts = await conn.fetch(
        "SELECT kind, count(*)::int FROM alerts WHERE ts >= $1 GROUP BY kind", since
    )
    by_kind = {r[0]: r[1] for r in alerts}
    return {
        "since": since,
        "admitted": admitted,
        "denied": sum(denied.values()),
        "denied_by_reason": denied,
        "fevers": denied.get("fever", 0),
        "alerts_by_kind": by_kind if org_scope is None else {},
    }


async def list_audit(
    conn: asyncpg.Connection,
    *,
    entity: str | None,
    operator: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, operator, action, entity, entity_id, before, after, ts FROM audit_log "
        "WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR operator = $2) "
        "ORDER BY id DESC LIMIT $3 OFFSET $4",
        entity,
        operator,
        limit,
        offset,
    )
    return _dicts(rows)
