"""Retention against a real PostgreSQL: exactly what goes, what stays, dry runs, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from gateway.services.importer import import_file
from gateway.services.retention import AccessMode, RetentionBusyError, run_retention
from gateway.settings import Settings
from gateway.store.locks import LockKey

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# access 90 days: cut-off 2026-03-17 12:00 UTC; health 180: 2025-12-17; reports 365: 2025-06-15
SETTINGS = Settings(
    retention_access_days=90,
    retention_health_days=180,
    retention_reports_days=365,
    isolation_days=14,
)

CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S1, kind: student, name: Li Hua, org_unit: cs, cards: ["04A1B2C3"]}
  - {id: S2, kind: student, name: Wang Fang, org_unit: cs, cards: ["04A1B2C4"]}
  - {id: T1, kind: staff, name: Zhang Wei, org_unit: cs}
"""


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (event_id, received_at): Jan and Feb are wholly older than the cut-off, March partly,
# December 2025 has no partition (its rows sit in the default partition).
EVENTS = [
    ("dec", ts("2025-12-20T08:00")),
    ("jan-1", ts("2026-01-05T08:00")),
    ("jan-2", ts("2026-01-25T08:00")),
    ("feb", ts("2026-02-10T08:00")),
    ("mar-old", ts("2026-03-10T08:00")),
    ("mar-new", ts("2026-03-20T08:00")),
    ("jun", ts("2026-06-14T08:00")),
]


async def _seed(conn: asyncpg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text(CAMPUS)
    await import_file(conn, path, tz=TZ)
    for month in ("2026-01-01", "2026-02-01", "2026-03-01", "2026-06-01"):
        await conn.fetchval("SELECT campusgate_ensure_access_partition($1)", ts(month + "T00:00"))
    for event_id, at in EVENTS:
        await conn.execute(
            "INSERT INTO access_events (device_id, event_id, type, device_ts, received_at,"
            " door_id, zone_id, person_id, card_uid, direction, celsius, decision, reason, detail)"
            " VALUES ('term-1', $1, 'card', $2, $2, 'door-1', 'zone-1', 'S1', '04A1B2C3', 'in',"
            " 36.5, 'admit', 'ok', '{\"card_uid\": \"04A1B2C3\", \"paired\": true}')",
            event_id,
            at,
        )
    history = [  # person, status, changed_at
        ("S1", "fever_watch", "2025-10-01T00:00"),  # old, superseded: goes
        ("S1", "clear", "2025-11-01T00:00"),  # old but sets the current status: stays
        ("S2", "home_isolation", "2025-09-01T00:00"),  # old, superseded: goes
        ("S2", "recovered", "2026-06-01T00:00"),  # recent: stays
        ("GONE", "confirmed", "2025-08-01T00:00"),  # person no longer held: goes
        ("GONE", "recovered", "2026-06-02T00:00"),  # recent: stays
    ]
    for person, status, at in history:
        await conn.execute(
            "INSERT INTO health_history (person_id, status, since, reason, changed_by, changed_at)"
            " VALUES ($1, $2, $3, 'r', 'test', $3)",
            person,
            status,
            ts(at),
        )
    await conn.execute(
        "INSERT INTO health_status (person_id, status, since) VALUES"
        " ('S1', 'clear', $1), ('S2', 'recovered', $2)",
        ts("2025-11-01T00:00"),
        ts("2026-06-01T00:00"),
    )
    alerts = [
        ("al-old", "fever", "2026-03-01T00:00", "S1", {"card_uid": "04A1B2C3", "celsius": 38.5}),
        ("al-old-outsider", "outsider", "2026-02-01T00:00", None, {"card_uid": "0A0B0C0D"}),
        ("al-new", "fever", "2026-06-01T00:00", "S1", {"card_uid": "04A1B2C3", "celsius": 38.6}),
    ]
    for alert_id, kind, at, person, detail in alerts:
        await conn.execute(
            "INSERT INTO alerts (id, kind, severity, ts, person, detail)"
            " VALUES ($1, $2, 'high', $3, $4, $5)",
            alert_id,
            kind,
            ts(at),
            person,
            detail,
        )
    if await conn.fetchval("SELECT to_regclass('health_readings') IS NOT NULL"):
        for at in ("2025-10-01T00:00", "2026-06-01T00:00"):
            await conn.execute(
                "INSERT INTO health_readings (person_id, celsius, fever, measured_at, recorded_by)"
                " VALUES ('S1', 37.8, true, $1, 'guard')",
                ts(at),
            )
    if await conn.fetchval("SELECT to_regclass('travel_declarations') IS NOT NULL"):
        # isolation ends return + 14 days; the cut-off day is 2025-12-17 (campus time)
        for dest, dep, ret in (
            ("old", date(2025, 10, 20), date(2025, 11, 1)),  # ended 11-15: goes
            ("edge", date(2025, 11, 20), date(2025, 12, 3)),  # ended 12-17: stays
            ("new", date(2025, 12, 1), date(2025, 12, 10)),  # ended 12-24: stays
        ):
            await conn.execute(
                "INSERT INTO travel_declarations"
                " (person_id, destination, departure_date, return_date, declared_by)"
                " VALUES ('S2', $1, $2, $3, 'test')",
                dest,
                dep,
                ret,
            )
    if await conn.fetchval("SELECT to_regclass('daily_reports') IS NOT NULL"):
        for day, at in (
            (date(2025, 6, 1), "2025-06-02T00:00"),
            (date(2026, 6, 1), "2026-06-02T00:00"),
        ):
            report_id = await conn.fetchval(
                "INSERT INTO daily_reports (day, audience, generated_at, generated_by, cutoff,"
                " summary, lists) VALUES ($1, 'student', $2, 'test', $2, '{}', '{}') RETURNING id",
                day,
                ts(at),
            )
            await conn.execute(
                "INSERT INTO report_deliveries (report_id, channel, recipient, status, sent_by)"
                " VALUES ($1, 'email', 'mailto:x@example.edu', 'ok', 'test')",
                report_id,
            )


async def _snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    tables = ["access_events", "health_history", "alerts", "audit_log"]
    for optional in (
        "health_readings",
        "travel_declarations",
        "daily_reports",
        "report_deliveries",
    ):
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", optional):
            tables.append(optional)
    snap: dict[str, Any] = {}
    for table in tables:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        snap[table] = sorted(repr(sorted(dict(r).items())) for r in rows)
    snap["partitions"] = sorted(
        r[0]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'access_events'::regclass"
        )
    )
    return snap


EXPECTED = {
    "access_partitions_dropped": 2,
    "access_events": 5,  # dec (default partition), jan-1, jan-2, feb, mar-old
    "alerts_anonymized": 2,
    "health_history": 3,
}


async def test_dry_run_changes_nothing_and_counts_what_a_run_removes(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await _seed(conn, tmp_path)
    before = await _snapshot(conn)
    dry = await run_retention(conn, SETTINGS, NOW, dry_run=True)
    assert await _snapshot(conn) == before
    real = await run_retention(conn, SETTINGS, NOW, requested_by="tester")
    assert dry.counts == real.counts
    assert real.counts.items() >= EXPECTED.items()


async def test_delete_mode_removes_exactly_the_old_rows(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await _seed(conn, tmp_path)
    report = await run_retention(conn, SETTINGS, NOW)
    assert report.mode is AccessMode.DELETE
    assert report.counts.items() >= EXPECTED.items()
    left = [
        r[0] for r in await conn.fetch("SELECT event_id FROM access_events ORDER BY received_at")
    ]
    assert left == ["mar-new", "jun"]
    partitions = await _snapshot(conn)
    assert "access_events_2026m01" not in partitions["partitions"]
    assert "access_events_2026m02" not in partitions["partitions"]
    assert {"access_events_2026m03", "access_events_2026m06", "access_events_default"} <= set(
        partitions["partitions"]
    )
    history = await conn.fetch("SELECT person_id, status FROM health_history ORDER BY changed_at")
    assert [tuple(r) for r in history] == [
        ("S1", "clear"),
        ("S2", "recovered"),
        ("GONE", "recovered"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM health_status") == 2
    alerts = {r["id"]: r for r in await conn.fetch("SELECT id, person, detail FROM alerts")}
    assert alerts["al-old"]["person"] is None
    assert alerts["al-old"]["detail"] == {"celsius": 38.5}
    assert alerts["al-old-outsider"]["detail"] == {}
    assert alerts["al-new"]["person"] == "S1"
    assert alerts["al-new"]["detail"]["card_uid"] == "04A1B2C3"
    if "health_readings" in report.counts:
        assert report.counts["health_readings"] == 1
        assert await conn.fetchval("SELECT count(*) FROM health_readings") == 1
    if "travel_declarations" in report.counts:
        assert report.counts["travel_declarations"] == 1
        left_trips = await conn.fetch("SELECT destination FROM travel_declarations ORDER BY id")
        assert [r[0] for r in left_trips] == ["edge", "new"]
    if "daily_reports" in report.counts:
        assert report.counts["daily_reports"] == 1 and report.counts["report_deliveries"] == 1
        assert await conn.fetchval("SELECT count(*) FROM report_deliveries") == 1
    # A second run finds nothing more.
    again = await run_retention(conn, SETTINGS, NOW)
    assert not any(again.counts.values()), again.counts


async def test_anonymize_mode_keeps_counts(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await _seed(conn, tmp_path)
    report = await run_retention(conn, SETTINGS, NOW, mode=AccessMode.ANONYMIZE)
    assert report.counts["access_events_anonymized"] == 5
    rows = await conn.fetch(
        "SELECT event_id, person_id, card_uid, detail, celsius FROM access_events"
        " ORDER BY received_at"
    )
    assert len(rows) == len(EVENTS)
    for row in rows:
        old = row["event_id"] not in ("mar-new", "jun")
        assert (row["person_id"] is None) is old and (row["card_uid"] is None) is old
        assert ("card_uid" in row["detail"]) is not old
        assert row["detail"]["paired"] is True and row["celsius"] == 36.5
    assert (await run_retention(conn, SETTINGS, NOW, mode=AccessMode.ANONYMIZE)).counts[
        "access_events_anonymized"
    ] == 0


async def test_run_is_audited_and_append_only_tables_still_refuse_deletes(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await _seed(conn, tmp_path)
    await run_retention(conn, SETTINGS, NOW, dry_run=True)
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE operator = 'retention'") == 0
    report = await run_retention(conn, SETTINGS, NOW, requested_by="admin")
    entry = await conn.fetchrow(
        "SELECT action, entity, entity_id, after FROM audit_log WHERE operator = 'retention'"
    )
    assert (entry["action"], entry["entity"], entry["entity_id"]) == (
        "purge",
        "retention",
        "2026-06-15",
    )
    assert entry["after"]["counts"] == report.counts
    assert entry["after"]["requested_by"] == "admin" and entry["after"]["mode"] == "delete"
    for table in ("health_history", "audit_log"):  # both hold rows, so the row trigger fires
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"DELETE FROM {table}")
    # The switch is local to the job's transaction: nothing leaked into the session.
    assert await conn.fetchval("SELECT current_setting('campusgate.retention_purge', true)") in (
        None,
        "",
    )


async def test_concurrent_runs_are_refused(conn: asyncpg.Connection, fresh_db: str) -> None:
    other = await asyncpg.connect(fresh_db)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", LockKey.RETENTION)
        with pytest.raises(RetentionBusyError, match="in progress"):
            await run_retention(conn, SETTINGS, NOW)
    finally:
        await other.close()


async def test_nothing_to_do_on_an_empty_campus(conn: asyncpg.Connection) -> None:
    report = await run_retention(conn, SETTINGS, datetime.now(UTC))
    assert not any(report.counts.values())
    assert (
        report.as_dict()["cutoffs"]["access"] < (datetime.now(UTC) - timedelta(days=89)).isoformat()
    )


async def test_the_daily_job_runs_retention(
    fresh_db: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    from gateway.services.jobs import campus_jobs
    from gateway.store.db import create_pool

    await _seed(conn, tmp_path)
    pool = await create_pool(fresh_db, min_size=1, max_size=2)
    try:
        job = next(j for j in campus_jobs(pool, SETTINGS) if j.name == "retention")
        assert job.daily_at is not None and job.every_s is None
        counts = await job.run(NOW)
    finally:
        await pool.close()
    assert counts.items() >= EXPECTED.items()
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE operator = 'retention'") == 1


async def test_the_record_of_uploaded_offline_events_ages_out_with_the_access_log(
    conn: asyncpg.Connection,
) -> None:
    """Issue 13: `offline_uploads` rows older than the access log's cut-off go too."""
    for event_id, when in (("old", ts("2026-01-10T08:00:00")), ("new", ts("2026-06-10T08:00:00"))):
        await conn.execute(
            "INSERT INTO offline_uploads (device_id, event_id, device_ts, local_decision,"
            " local_reason) VALUES ('term-1', $1, $2, 'admit', 'ok')",
            event_id,
            when,
        )
    dry = await run_retention(conn, SETTINGS, NOW, dry_run=True)
    real = await run_retention(conn, SETTINGS, NOW, requested_by="tester")
    assert dry.counts["offline_uploads"] == real.counts["offline_uploads"] == 1
    left = [r[0] for r in await conn.fetch("SELECT event_id FROM offline_uploads")]
    assert left == ["new"]
