"""Everything held about one person, read for an export (rows as plain dicts).

Tables of other workflows (manual readings, travel declarations) are read only when they
exist. Besides the roster and health rows: the person's passages in the access log,
the alerts naming them, the audit entries about them (who changed, traced, unmasked
or exported them) and whom they care for as a caretaker. Daily reports are not
searched: they are aggregates, and their lists age out with retention.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.store.retention import table_exists


def _dicts(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def person_record(conn: asyncpg.Connection, person_id: str) -> dict[str, Any] | None:
    """The person's row and everything naming them; None when no such person."""
    person = await conn.fetchrow(
        "SELECT id, kind, name, org_unit_id, active, valid_until, phone, id_number, updated_at"
        " FROM people WHERE id = $1",
        person_id,
    )
    if person is None:
        return None
    record: dict[str, Any] = {"person": dict(person)}
    record["cards"] = _dicts(
        await conn.fetch(
            "SELECT uid, revoked, valid_until, updated_at FROM cards WHERE person_id = $1"
            " ORDER BY uid",
            person_id,
        )
    )
    record["grants"] = _dicts(
        await conn.fetch(
            "SELECT id, zone_id, schedule, valid_from, valid_until, updated_at FROM grants"
            " WHERE subject_person = $1 ORDER BY id",
            person_id,
        )
    )
    current = await conn.fetchrow(
        "SELECT status, since, until, reason, caretaker_id, set_by, updated_at"
        " FROM health_status WHERE person_id = $1",
        person_id,
    )
    record["health_status"] = dict(current) if current else None
    record["health_history"] = _dicts(
        await conn.fetch(
            "SELECT id, status, since, until, reason, caretaker_id, set_by, changed_by, changed_at"
            " FROM health_history WHERE person_id = $1 ORDER BY changed_at, id",
            person_id,
        )
    )
    if await table_exists(conn, "health_readings"):
        record["health_readings"] = _dicts(
            await conn.fetch(
                "SELECT id, celsius, fever, measured_at, recorded_by, note, recorded_at"
                " FROM health_readings WHERE person_id = $1 ORDER BY measured_at, id",
                person_id,
            )
        )
    if await table_exists(conn, "travel_declarations"):
        record["travel_declarations"] = _dicts(
            await conn.fetch(
                "SELECT * FROM travel_declarations WHERE person_id = $1"
                " ORDER BY departure_date, id",
                person_id,
            )
        )
    if await table_exists(conn, "visitor_passes"):
        # Passes the person hosted or visited on (their use is in access_events).
        record["visitor_passes"] = _dicts(
            await conn.fetch(
                "SELECT * FROM visitor_passes WHERE host_id = $1 OR visitor_person_id = $1"
                " ORDER BY id",
                person_id,
            )
        )
    record["access_events"] = _dicts(
        await conn.fetch(
            "SELECT received_at, device_ts, device_id, event_id, type, door_id, zone_id,"
            " card_uid, direction, celsius, decision, reason FROM access_events"
            " WHERE person_id = $1 ORDER BY received_at, device_id, event_id",
            person_id,
        )
    )
    record["alerts"] = _dicts(
        await conn.fetch(
            "SELECT id, kind, severity, ts, door, zone, device, status, detail FROM alerts"
            " WHERE person = $1 ORDER BY ts, id",
            person_id,
        )
    )
    # Cards and manual readings are audited under their own ids, not the person's.
    readings = [str(r["id"]) for r in record.get("health_readings", ())]
    record["audit"] = _dicts(
        await conn.fetch(
            "SELECT ts, operator, action, entity, entity_id, before, after FROM audit_log"
            " WHERE (entity_id = $1 AND entity IN ('person', 'health_status'))"
            " OR (entity = 'card' AND entity_id = ANY($2::text[]))"
            " OR (entity = 'health_reading' AND entity_id = ANY($3::text[]))"
            " OR (entity = 'visitor_pass' AND entity_id = ANY($4::text[]))"
            " ORDER BY ts, id",
            person_id,
            [c["uid"] for c in record["cards"]],
            readings,
            [str(p["id"]) for p in record.get("visitor_passes", ())],
        )
    )
    record["caretaker_of"] = _dicts(
        await conn.fetch(
            "SELECT person_id, status, since, until FROM health_status"
            " WHERE caretaker_id = $1 ORDER BY person_id",
            person_id,
        )
    )
    return record
