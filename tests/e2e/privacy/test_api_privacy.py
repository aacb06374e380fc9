"""Masked contact details, audited unmasking, the person export and retention over the API."""

from __future__ import annotations

import asyncpg
import pytest
from privacy_fixtures import ID_NUMBER, PHONE, READING_CELSIUS, SENTINEL_REASON, PrivacyWorld

from gateway.store.db import connect

MASKED_PHONE, MASKED_ID = "138****5678", "1101**********1234"


async def _audit(dsn: str, action: str, entity_id: str) -> list[asyncpg.Record]:
    conn = await connect(dsn)
    try:
        return await conn.fetch(
            "SELECT operator, after, ts FROM audit_log WHERE action = $1 AND entity = 'person'"
            " AND entity_id = $2 ORDER BY id",
            action,
            entity_id,
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("role", ["admin", "guard", "health_officer", "liaison"])
async def test_lists_and_records_are_masked_by_default(client_for, role: str) -> None:
    client = client_for(role)
    listed = (await client.get("/api/people", params={"q": "Li Hua"})).json()["items"]
    one = (await client.get("/api/people/S001")).json()
    for person in (listed[0], one):
        assert person["phone"] == MASKED_PHONE and person["id_number"] == MASKED_ID
        assert person["contact_masked"] is True
    text = (await client.get("/api/people", params={"limit": 500})).text
    assert PHONE not in text and ID_NUMBER not in text


@pytest.mark.parametrize("role", ["admin", "health_officer"])
async def test_unmask_shows_full_values_and_is_audited(
    client_for, privacy_world: PrivacyWorld, role: str
) -> None:
    before = len(await _audit(privacy_world.dsn, "unmask", "S001"))
    response = await client_for(role).get("/api/people/S001", params={"unmask": "true"})
    assert response.status_code == 200
    person = response.json()
    assert (person["phone"], person["id_number"]) == (PHONE, ID_NUMBER)
    assert person["contact_masked"] is False
    entries = await _audit(privacy_world.dsn, "unmask", "S001")
    assert len(entries) == before + 1
    assert entries[-1]["operator"] == role
    assert entries[-1]["after"] == {"fields": ["phone", "id_number"]}
    assert PHONE not in str(entries[-1]["after"])  # the log says what, never the value


@pytest.mark.parametrize("role", ["guard", "liaison"])
async def test_unmask_is_refused_without_the_permission(
    client_for, privacy_world: PrivacyWorld, role: str
) -> None:
    before = len(await _audit(privacy_world.dsn, "unmask", "S001"))
    response = await client_for(role).get("/api/people/S001", params={"unmask": "true"})
    assert response.status_code == 403
    assert PHONE not in response.text
    assert len(await _audit(privacy_world.dsn, "unmask", "S001")) == before


async def test_unmask_of_an_unknown_person_is_404(client_for) -> None:
    assert (await client_for("admin").get("/api/people/NOBODY?unmask=true")).status_code == 404
    bad = await client_for("admin").get("/api/people/S001?unmask=maybe")
    assert bad.status_code == 422


@pytest.mark.parametrize("role", ["admin", "health_officer"])
async def test_export_holds_everything_and_is_audited(
    client_for, privacy_world: PrivacyWorld, role: str
) -> None:
    before = len(await _audit(privacy_world.dsn, "export", "S001"))
    response = await client_for(role).get("/api/people/S001/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="person-S001.json"'
    doc = response.json()
    assert doc["format"] == "campusgate.person-export/1" and doc["exported_by"] == role
    assert doc["person"]["name"] == "Li Hua" and doc["person"]["org_unit_id"] == "cs-1"
    assert (doc["person"]["phone"], doc["person"]["id_number"]) == (PHONE, ID_NUMBER)
    assert [c["uid"] for c in doc["cards"]] == ["04A1B2C3"]
    assert [(g["zone_id"], g["schedule"]) for g in doc["grants"]] == [
        ("dorm-1", "daily 06:00-23:00")
    ]  # the org unit's grant is not the person's
    assert doc["health_status"]["status"] == "close_contact"
    assert doc["health_status"]["reason"] == SENTINEL_REASON
    assert [h["status"] for h in doc["health_history"]] == ["fever_watch", "close_contact"]
    assert [r["celsius"] for r in doc["health_readings"]] == [READING_CELSIUS]
    assert [t["destination"] for t in doc["travel_declarations"]] == ["Harbin"]
    assert [(e["event_id"], e["reason"]) for e in doc["access_events"]] == [("e-fever", "fever")]
    assert [a["id"] for a in doc["alerts"]] == ["a-fever-s001"]
    assert doc["caretaker_of"] == []  # S001 cares for nobody
    assert all(e["entity"] in ("person", "health_status", "health_reading", "card")
               for e in doc["audit"])  # fmt: skip
    entries = await _audit(privacy_world.dsn, "export", "S001")
    assert len(entries) == before + 1 and entries[-1]["operator"] == role
    assert entries[-1]["after"]["sections"]["health_history"] == 2


@pytest.mark.parametrize("role", ["guard", "liaison"])
async def test_export_is_refused_to_guards_and_liaisons(client_for, role: str) -> None:
    response = await client_for(role).get("/api/people/S001/export")
    assert response.status_code == 403 and PHONE not in response.text


async def test_export_of_an_unknown_person_is_404(client_for) -> None:
    response = await client_for("admin").get("/api/people/NOBODY/export")
    assert response.status_code == 404 and response.json()["detail"] == "no person 'NOBODY'"


@pytest.mark.parametrize("role", ["guard", "health_officer", "liaison"])
async def test_retention_is_for_admins_only(client_for, role: str) -> None:
    response = await client_for(role).post("/api/admin/retention", json={"dry_run": True})
    assert response.status_code == 403


async def test_retention_dry_run_over_the_api(client_for, privacy_world: PrivacyWorld) -> None:
    admin = client_for("admin")
    response = await admin.post("/api/admin/retention", json={"dry_run": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["mode"] == "delete"
    assert not any(body["counts"].values())  # everything in this campus is recent
    assert (await admin.post("/api/admin/retention", json={"mode": "shred"})).status_code == 422
    assert (await admin.post("/api/admin/retention", json={"dryrun": True})).status_code == 422
    real = await admin.post("/api/admin/retention", json={"mode": "anonymize"})
    assert real.status_code == 200 and real.json()["dry_run"] is False
    conn = await connect(privacy_world.dsn)
    try:
        entry = await conn.fetchrow(
            "SELECT operator, after FROM audit_log WHERE entity = 'retention' ORDER BY id DESC"
        )
    finally:
        await conn.close()
    assert entry["operator"] == "retention" and entry["after"]["requested_by"] == "admin"


async def test_export_of_a_caretaker_lists_whom_they_care_for(client_for) -> None:
    doc = (await client_for("health_officer").get("/api/people/T001/export")).json()
    assert "S001" in [c["person_id"] for c in doc["caretaker_of"]]
    assert doc["access_events"] == [] and doc["alerts"] == []
