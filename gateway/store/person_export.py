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

from gateway.domain.privacy import mask_contact
from gateway.store.checkins import person_checkins
from gateway.store.retention import table_exists


def _dicts(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


_PASS_COLUMNS = (
    "id, host_id, host_unit_id, visitor_name, phone, id_number, reason, zones, starts_at,"
    " ends_at, places, area_matches, status, requested_by, requested_at, decided_by,"
    " decided_at, note, visitor_person_id, card_uid, overstay_alerted_at"
)


async def _visitor_passes(conn: asyncpg.Connection, person_id: str) -> list[dict[str, Any]]:
    """Passes the person hosted or visited on. The visitor's phone and ID number are the
    visitor's data: masked in a host's export, in full in the visitor's own (as the
    person's own row carries them)."""
    rows = _dicts(
        await conn.fetch(
            f"SELECT {_PASS_COLUMNS} FROM visitor_passes"
            " WHERE host_id = $1 OR visitor_person_id = $1 ORDER BY id",
            person_id,
        )
    )
    for row in rows:
        if row["visitor_person_id"] != person_id:
            row["phone"], row["id_number"] = mask_contact(row["phone"], row["id_number"])
    return rows


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
    if await table_exists(conn, "care_contacts"):
        record["care_contacts"] = _dicts(
            await conn.fetch(
                "SELECT id, caretaker_id, channel, at, feeling, temperature_c, note,"
                " recorded_by, recorded_at FROM care_contacts WHERE person_id = $1"
                " ORDER BY at, id",
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
    # Daily check-ins (issue #15): every version of every day, reviews, reminders.
    record.update(await person_checkins(conn, person_id))
    if await table_exists(conn, "person_accounts"):
        # The account of the mobile page: when made, whether a password is set, last
        # sign-in, how many sessions and invitations; never the hashes.
        account = await conn.fetchrow(
            "SELECT a.created_at, a.password_hash IS NOT NULL AS has_password,"
            " a.password_set_at, a.last_login_at,"
            " (SELECT count(*) FROM person_sessions s WHERE s.account_id = a.id) AS sessions,"
            " (SELECT count(*) FROM person_invitations i WHERE i.account_id = a.id)"
            " AS invitations FROM person_accounts a WHERE a.person_id = $1",
            person_id,
        )
        record["person_account"] = dict(account) if account else None
    if await table_exists(conn, "visitor_passes"):
        # Passes the person hosted or visited on (their use is in access_events).
        record["visitor_passes"] = await _visitor_passes(conn, person_id)
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
            " WHERE (entity_id = $1 AND entity IN ('person', 'health_status', 'person_session'))"
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
