"""The visitor pass service on a real database: what approval writes into the roster,
what revoking changes, and what retention removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.services import visitor_passes as service
from gateway.services.errors import (
    InvalidReferenceError,
    InvalidValueError,
    NotAllowedError,
    NotFoundError,
)
from gateway.store import retention

TZ = ZoneInfo("Asia/Shanghai")
RULES = service.PassRules(max_days=7)


@pytest.fixture
async def campus(conn):
    await conn.execute(
        "INSERT INTO org_units (id, name) VALUES ('cs', 'CS');"
        "INSERT INTO org_units (id, name, parent_id) VALUES ('ai', 'AI', 'cs');"
        "INSERT INTO org_units (id, name) VALUES ('math', 'Math');"
        "INSERT INTO zones (id, name, kind) VALUES ('office', 'Office', 'office'),"
        " ('lab', 'Lab', 'lab');"
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES ('T1', 'staff', 'Chen', 'ai'),"
        " ('S1', 'student', 'Li', 'ai')"
    )
    return conn


def request(now: datetime, **changes) -> service.PassRequest:
    values = {
        "host_id": "T1",
        "visitor_name": "Zhao Lei",
        "phone": "138 1234 5678",
        "id_number": "11010119900307123x",
        "reason": "meeting",
        "zones": ("office", "lab", "office"),
        "starts_at": now,
        "ends_at": now + timedelta(hours=2),
        "places": (),
    }
    values.update(changes)
    return service.PassRequest(**values)


async def test_approval_writes_a_visitor_card_and_windowed_grants(campus):
    conn = campus
    now = datetime.now(UTC)
    made = await service.request_pass(conn, request(now), RULES, by="T1", now=now, tz=TZ)
    assert made["phone"] == "13812345678" and made["id_number"] == "11010119900307123X"
    assert made["zones"] == ["office", "lab"] and made["host_unit_id"] == "ai"
    with pytest.raises(NotFoundError):  # another unit's liaison
        await service.approve(conn, made["id"], "math", by="l-math", note=None)
    done = await service.approve(  # ai is under cs; a lab zone needs an admin's approval
        conn, made["id"], "cs", by="l-cs", note="ok", may_open_labs=True
    )
    person = await conn.fetchrow("SELECT * FROM people WHERE id = $1", done["visitor_person_id"])
    assert (person["kind"], person["org_unit_id"], person["active"]) == ("visitor", "ai", True)
    assert person["valid_until"] == made["ends_at"]  # the holder expires with the pass
    card = await conn.fetchrow("SELECT * FROM cards WHERE uid = $1", done["card_uid"])
    assert card["person_id"] == person["id"] and not card["revoked"]
    assert len(bytes.fromhex(done["card_uid"])) == 10
    grants = await conn.fetch(
        "SELECT zone_id, valid_from, valid_until FROM grants WHERE subject_person = $1"
        " ORDER BY zone_id",
        person["id"],
    )
    assert [(g[0], g[1], g[2]) for g in grants] == [
        (z, made["starts_at"], made["ends_at"]) for z in ("lab", "office")
    ]
    revoked = await service.revoke(conn, made["id"], None, by="admin", note=None)
    assert revoked["status"] == "revoked"
    assert await conn.fetchval("SELECT revoked FROM cards WHERE uid = $1", done["card_uid"])


async def test_lab_passes_need_an_admin_and_no_host_approves_their_own(campus):
    conn = campus
    now = datetime.now(UTC)
    lab = await service.request_pass(conn, request(now), RULES, by="T1", now=now, tz=TZ)
    with pytest.raises(NotAllowedError, match=r"lab zone.*lab.*an admin must approve"):
        await service.approve(conn, lab["id"], "cs", by="l-cs", note=None)
    with pytest.raises(NotAllowedError, match="own pass"):
        await service.approve(conn, lab["id"], None, by="T1", note=None, may_open_labs=True)
    assert (await service.pass_in_scope(conn, lab["id"], None))["status"] == "pending"
    office = await service.request_pass(
        conn, request(now, zones=("office",)), RULES, by="T1", now=now, tz=TZ
    )
    done = await service.approve(conn, office["id"], "cs", by="l-cs", note=None)
    assert done["status"] == "approved"


async def test_request_checks(campus):
    now = datetime.now(UTC)
    cases = [
        (request(now, host_id="S1"), InvalidReferenceError, "not active staff"),
        (request(now, host_id="X"), InvalidReferenceError, "unknown host"),
        (request(now, zones=("office", "moon")), InvalidReferenceError, "unknown zone 'moon'"),
        (request(now, ends_at=now + timedelta(days=8)), InvalidValueError, "at most 7 days"),
        (request(now, ends_at=now), InvalidValueError, "after starts_at"),
        (
            request(now - timedelta(days=3), ends_at=now - timedelta(days=2)),
            InvalidValueError,
            "in the past",
        ),
        (request(now, phone="12"), InvalidValueError, "phone"),
    ]
    for bad, error, words in cases:
        with pytest.raises(error, match=words):
            await service.request_pass(campus, bad, RULES, by="T1", now=now, tz=TZ)
    assert await campus.fetchval("SELECT count(*) FROM visitor_passes") == 0


async def test_retention_removes_ended_passes_and_their_visitors_details(campus):
    conn = campus
    then = datetime.now(UTC) - timedelta(days=100)
    old = await service.request_pass(conn, request(then), RULES, by="T1", now=then, tz=TZ)
    old = await service.approve(conn, old["id"], None, by="admin", note=None, may_open_labs=True)
    now = datetime.now(UTC)
    new = await service.request_pass(conn, request(now), RULES, by="T1", now=now, tz=TZ)
    cutoff = now - timedelta(days=90)
    counts = await retention.purge_visitor_passes(conn, cutoff, dry_run=True)
    assert counts == {"visitor_passes": 1, "visitor_people": 1}
    assert await conn.fetchval("SELECT count(*) FROM visitor_passes") == 2
    counts = await retention.purge_visitor_passes(conn, cutoff, dry_run=False)
    assert counts == {"visitor_passes": 1, "visitor_people": 1}
    assert [r[0] for r in await conn.fetch("SELECT id FROM visitor_passes")] == [new["id"]]
    person = await conn.fetchrow("SELECT * FROM people WHERE id = $1", old["visitor_person_id"])
    assert person["name"] == "visitor (pass expired)" and not person["active"]
    assert not await conn.fetchval(
        "SELECT count(*) FROM grants WHERE subject_person = $1", old["visitor_person_id"]
    )
    assert await conn.fetchval("SELECT revoked FROM cards WHERE uid = $1", old["card_uid"])
