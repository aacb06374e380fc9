"""Retention of what outlives a person's data (real PostgreSQL, the real app): accounts of
people who left the roster, and the personal detail of the audit log, which still says
who did what to which object and when."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from api.app import create_app
from gateway.services import visitor_passes
from gateway.services.retention import run_retention
from gateway.settings import Settings
from gateway.store.operators import add_operator
from tests.person_sign_in import api_client, person_bearer

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings(
    retention_access_days=90,
    retention_health_days=180,
    retention_reports_days=365,
    retention_person_account_days=30,
)
RULES = visitor_passes.PassRules(max_days=7)


@pytest.fixture
async def campus(conn: asyncpg.Connection) -> asyncpg.Connection:
    await conn.execute(
        "INSERT INTO org_units (id, name) VALUES ('cs', 'CS');"
        "INSERT INTO zones (id, name, kind) VALUES ('office', 'Office', 'office');"
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES"
        " ('T1', 'staff', 'Chen Jie', 'cs'), ('S1', 'student', 'Li Hua', 'cs'),"
        " ('S2', 'student', 'Wang Fang', 'cs'), ('S3', 'student', 'Sun Li', 'cs')"
    )
    return conn


def _request(now: datetime, starts: timedelta, name: str) -> visitor_passes.PassRequest:
    return visitor_passes.PassRequest(
        host_id="T1",
        visitor_name=name,
        phone="13812345678",
        id_number="110101199003071234",
        reason="meeting about the thesis",
        zones=("office",),
        starts_at=now + starts,
        ends_at=now + starts + timedelta(hours=3),
        places=("Wuhan",),
    )


async def _entries(conn: asyncpg.Connection, entity: str, entity_id: str) -> list[Any]:
    return await conn.fetch(
        "SELECT operator, action, entity, entity_id, before, after, ts, redacted_at"
        " FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY id",
        entity,
        entity_id,
    )


async def test_visitor_pass_audit_keeps_who_did_what_but_not_the_visitor(
    campus: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    conn = campus
    now = datetime.now(UTC)
    old = await visitor_passes.request_pass(
        conn, _request(now, timedelta(hours=1), "Zhao Lei"), RULES, by="T1", now=now, tz=TZ
    )
    approved = await visitor_passes.approve(conn, old["id"], None, by="admin-1", note="ok")
    later = await visitor_passes.request_pass(  # ends about 80 days on: still kept
        conn, _request(now, timedelta(days=80), "Qian Yu"), RULES, by="T1", now=now, tz=TZ
    )
    old_id, later_id = str(old["id"]), str(later["id"])
    before = await _entries(conn, "visitor_pass", old_id)
    assert [e["action"] for e in before] == ["request", "approve"]
    assert before[1]["after"]["visitor_name"] == "Zhao Lei"
    assert before[1]["after"]["places"] == ["Wuhan"]

    run_at = now + timedelta(days=91)  # the old pass ended before the access cut-off
    dry = await run_retention(conn, SETTINGS, run_at, dry_run=True)
    assert dry.counts["audit_redacted_visitor_passes"] == 2  # what the run will redact
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE redacted_at IS NOT NULL") == 0
    with caplog.at_level(logging.INFO, logger="gateway.services.retention"):
        report = await run_retention(conn, SETTINGS, run_at)
    assert report.counts["visitor_passes"] == 1
    assert report.counts["audit_redacted_visitor_passes"] == 2
    print("counts:", report.counts)
    logged = [r.getMessage() for r in caplog.records]
    assert "retention visitor passes: removed visitor_passes 1, visitor_people 1" in logged
    assert "retention audit log: removed" in " ".join(logged)

    after = await _entries(conn, "visitor_pass", old_id)
    assert [(e["operator"], e["action"], e["ts"]) for e in after] == [
        (e["operator"], e["action"], e["ts"]) for e in before
    ]
    request_entry, approval = after
    assert request_entry["before"] is None
    assert request_entry["after"]["redacted"] == sorted(before[0]["after"])
    assert approval["before"]["redacted"] == sorted(before[1]["before"])
    assert approval["redacted_at"] is not None
    text = str([dict(e) for e in after])
    for detail in ("Zhao Lei", "Wuhan", "thesis", approved["card_uid"], "visitor-pass-"):
        assert detail not in text
    # Nor anywhere else in the log (the visitor's roster row was audited as a person).
    everything = await conn.fetchval("SELECT string_agg(row(a.*)::text, ' ') FROM audit_log a")
    assert "Zhao Lei" not in everything and "Qian Yu" in everything
    assert "110101199003071234" not in everything
    kept = await _entries(conn, "visitor_pass", later_id)
    assert kept[0]["redacted_at"] is None and kept[0]["after"]["visitor_name"] == "Qian Yu"
    # A second run finds nothing more; the run itself is audited.
    again = await run_retention(conn, SETTINGS, run_at)
    assert again.counts["audit_redacted_visitor_passes"] == 0
    runs = await conn.fetch("SELECT after FROM audit_log WHERE entity = 'retention'")
    assert runs[0]["after"]["counts"]["audit_redacted_visitor_passes"] == 2


@pytest.fixture
async def app_of(campus: asyncpg.Connection, fresh_db: str) -> AsyncIterator[Any]:
    app = create_app(Settings(database_url=fresh_db), fresh_db)
    async with app.router.lifespan_context(app):
        yield app


async def test_deactivated_people_lose_their_session_at_once_and_their_account_later(
    campus: asyncpg.Connection, app_of: Any, fresh_db: str
) -> None:
    conn = campus
    admin_token = await add_operator(conn, "admin-1", "admin")
    tokens = {p: await person_bearer(fresh_db, p) for p in ("S1", "S2", "S3")}
    await conn.execute(  # an open invitation of S1's, to go with the account
        "INSERT INTO person_invitations (token_hash, account_id, created_by, expires_at)"
        " SELECT 'h', id, 'admin-1', now() + interval '7 days' FROM person_accounts"
        " WHERE person_id = 'S1'"
    )
    async with api_client(app_of, admin_token) as admin:
        assert (await admin.post("/api/people/S1/deactivate")).status_code == 200
    # S3 reaches the end of their own validity: no deactivation, but no more sign-in.
    await conn.execute(
        "UPDATE people SET valid_until = now() - interval '1 second' WHERE id = 'S3'"
    )
    for person, status in (("S1", 401), ("S2", 200), ("S3", 401)):
        async with api_client(app_of, tokens[person]) as client:
            assert (await client.get("/api/me")).status_code == status, person
    assert await conn.fetchval("SELECT deactivated_at FROM people WHERE id = 'S1'") is not None

    now = datetime.now(UTC)
    soon = await run_retention(conn, SETTINGS, now + timedelta(days=29))
    assert soon.counts["person_accounts"] == 0  # within the period: kept
    later = await run_retention(conn, SETTINGS, now + timedelta(days=31))
    print("counts:", later.counts)
    assert later.counts["person_accounts"] == 2
    assert later.counts["departed_person_invitations"] == 1
    assert later.counts["departed_person_sessions"] == 1  # S3's: S1's ended at deactivation
    accounts = await conn.fetch("SELECT person_id FROM person_accounts ORDER BY person_id")
    assert [a["person_id"] for a in accounts] == ["S2"]
    assert await conn.fetchval("SELECT count(*) FROM people") == 4  # roster rows stay
    # Their audit entries keep who signed in when, without the details.
    s1 = await _entries(conn, "person_session", "S1")
    assert s1 and all(e["redacted_at"] is not None for e in s1)
    assert s1[0]["operator"] == "S1" and s1[0]["action"] == "sign_in"
    assert s1[0]["after"] == {"redacted": ["via"]}
    s2 = await _entries(conn, "person_session", "S2")
    assert s2[0]["after"] == {"via": "cas"}
    # Reactivating clears the date: a later run leaves the new account alone.
    await conn.execute("UPDATE people SET active = true WHERE id = 'S1'")
    assert await conn.fetchval("SELECT deactivated_at FROM people WHERE id = 'S1'") is None


async def test_status_of_people_who_left_goes_after_the_health_period(
    campus: asyncpg.Connection,
) -> None:
    conn = campus
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # health cut-off 2025-12-17 12:00
    day = timedelta(days=1)
    await conn.execute(
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES ('S4', 'student', 'Zhao Lei', 'cs')"
    )
    await conn.execute("UPDATE people SET active = false WHERE id IN ('S1', 'S3', 'S4')")
    for person, left in (("S1", now - 200 * day), ("S3", now - 10 * day), ("S4", now - 200 * day)):
        await conn.execute("UPDATE people SET deactivated_at = $2 WHERE id = $1", person, left)
    # Each: a status set 190 days ago, and an older one. S1's last one no longer holds
    # (recovered); S4 left as long ago, still a suspected case: a hold, kept.
    current = {"S1": "recovered", "S2": "suspected", "S3": "suspected", "S4": "suspected"}
    for person, status_now in current.items():
        for status, ago in (("fever_watch", 250), (status_now, 190)):
            await conn.execute(
                "INSERT INTO health_history (person_id, status, since, reason, changed_by,"
                " changed_at) VALUES ($1, $2, $3, 'fever at the gate', 'ho-1', $3)",
                person,
                status,
                now - ago * day,
            )
        await conn.execute(
            "INSERT INTO health_status (person_id, status, since, reason, updated_at)"
            " VALUES ($1, $3, $2, 'fever at the gate', $2)",
            person,
            now - 190 * day,
            status_now,
        )
    dry = await run_retention(conn, SETTINGS, now, dry_run=True)
    real = await run_retention(conn, SETTINGS, now)
    assert dry.counts == real.counts
    print("counts:", real.counts)
    assert real.counts["health_status_departed"] == 1  # S1 left 200 days ago, recovered
    assert real.counts["health_history_departed"] == 1
    assert real.counts["health_history"] == 4  # each one's superseded row
    statuses = await conn.fetch("SELECT person_id FROM health_status ORDER BY person_id")
    # Active; left recently; left long ago but still held (re-activated, still held).
    assert [s["person_id"] for s in statuses] == ["S2", "S3", "S4"]
    history = await conn.fetch(
        "SELECT person_id, status FROM health_history ORDER BY person_id, changed_at"
    )
    assert [tuple(h) for h in history] == [
        ("S2", "suspected"),
        ("S3", "suspected"),
        ("S4", "suspected"),
    ]
