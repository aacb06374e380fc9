"""The audit log's retention on a real PostgreSQL: which entries lose their snapshots'
personal detail, what they keep, and that nothing else of an entry can ever change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.store.audit_redaction import redact_audit

DAY = timedelta(days=1)


async def test_health_audit_detail_goes_with_the_health_period(conn: asyncpg.Connection) -> None:
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # health cut-off 2025-12-17 12:00
    rows = [  # operator, action, entity, entity_id, after, ts
        ("ho-1", "set_health", "health_status", "S1", {"status": "confirmed"}, "2025-12-01"),
        ("ho-1", "set_health", "health_status", "S2", {"status": "suspected"}, "2026-01-10"),
        ("ho-1", "mark_close_contacts", "person", "S1", {"marked": ["S2"]}, "2025-11-01"),
        ("S1", "checkin", "daily_checkin", "S1", {"symptoms": ["cough"]}, "2025-11-02"),
        ("admin-1", "create", "zone", "lab", {"name": "Lab"}, "2025-01-01"),
    ]
    for operator, action, entity, entity_id, after, day in rows:
        await conn.execute(
            "INSERT INTO audit_log (operator, action, entity, entity_id, after, ts)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            operator,
            action,
            entity,
            entity_id,
            after,
            datetime.fromisoformat(day).replace(tzinfo=UTC),
        )
    kwargs = {"health_cutoff": now - 180 * DAY, "access_cutoff": now - 90 * DAY}
    counted = await redact_audit(conn, **kwargs, account_cutoff=now - 30 * DAY, dry_run=True)
    done = await redact_audit(conn, **kwargs, account_cutoff=now - 30 * DAY, dry_run=False)
    assert counted == done
    assert done["audit_redacted_health"] == 3
    got = await conn.fetch("SELECT operator, action, entity_id, after FROM audit_log ORDER BY id")
    assert [(r["operator"], r["action"], r["entity_id"]) for r in got] == [
        (r[0], r[1], r[3]) for r in rows
    ]
    assert [r["after"] for r in got] == [
        {"redacted": ["status"]},
        {"status": "suspected"},  # within the period
        {"redacted": ["marked"]},
        {"redacted": ["symptoms"]},
        {"name": "Lab"},  # no personal data: kept whole
    ]


async def test_audit_log_refuses_every_other_rewrite(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO audit_log (operator, action, entity, entity_id, after)"
        " VALUES ('ho-1', 'set_health', 'health_status', 'S1', '{\"status\": \"clear\"}')"
    )
    for change in ("after = NULL", "after = NULL, redacted_at = now()"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"UPDATE audit_log SET {change}")
    for change in ("operator = 'someone'", "ts = ts - interval '1 day'", "entity_id = 'S2'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with conn.transaction():
                await conn.execute("SET LOCAL campusgate.retention_redact = 'on'")
                await conn.execute(f"UPDATE audit_log SET {change}, redacted_at = now()")
    async with conn.transaction():
        # With the setting on, a rewrite still only redacts: the trigger writes the
        # snapshot from the old one, whatever the UPDATE asked for.
        await conn.execute("SET LOCAL campusgate.retention_redact = 'on'")
        await conn.execute(
            'UPDATE audit_log SET after = \'{"status": "red"}\', redacted_at = now()'
        )
    after = await conn.fetchval("SELECT after::text FROM audit_log")
    assert json.loads(after) == {"redacted": ["status"]}
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        async with conn.transaction():  # redacted once: never rewritten again
            await conn.execute("SET LOCAL campusgate.retention_redact = 'on'")
            await conn.execute("UPDATE audit_log SET after = '{}'")
    assert await conn.fetchval("SELECT operator FROM audit_log") == "ho-1"
