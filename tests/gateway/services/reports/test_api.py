"""The daily-reports API: roles, liaison scope, formats, generate and send, bad input."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from openpyxl import load_workbook

from api.app import create_app
from gateway.settings import Settings
from gateway.store.accounts import set_org_unit
from gateway.store.operators import add_operator

from .conftest import Log, at, set_status, students_of, today

ROLES = ("admin", "guard", "health_officer", "liaison")


@pytest.fixture
async def api(campus_conn, small_campus, fresh_db, tmp_path) -> AsyncIterator:
    facts = small_campus.facts
    college = facts.lab_college
    tokens = {role: await add_operator(campus_conn, role, role) for role in ROLES}
    await set_org_unit(campus_conn, "liaison", college)
    s = students_of(small_campus, college)
    log = Log(campus_conn, facts.door_zones)
    day = today() - timedelta(days=1)
    await log.card(at(day, 10), facts.gate_door, "admit", "ok", person=s[0].id)
    await log.card(
        at(day, 20), facts.temperature_door, "deny", "fever", person=s[1].id, celsius=38.3
    )
    await set_status(campus_conn, s[2].id, "suspected")
    # A visitor the college hosts, refused at the college's lab for a fever.
    visitor = min(p.id for p in facts.people if p.kind == "visitor")
    await campus_conn.execute("UPDATE people SET org_unit_id = $1 WHERE id = $2", college, visitor)
    await log.card(at(day, 30), facts.lab_door, "deny", "fever", person=visitor, celsius=38.6)
    settings = Settings(
        database_url=fresh_db,
        data_dir=tmp_path,
        report_recipients=json.dumps({"student": ["http://127.0.0.1:9/nothing-listens"]}),
    )
    app = create_app(settings, fresh_db)
    clients: list[httpx.AsyncClient] = []

    def client(role: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )
        clients.append(c)
        return c

    async with app.router.lifespan_context(app):
        yield client, day, college, s
    for c in clients:
        await c.aclose()


async def test_generate_read_and_download_as_each_role(api):
    client, day, college, s = api
    officer, liaison, guard = client("health_officer"), client("liaison"), client("guard")
    response = await officer.post(
        "/api/daily-reports/generate", json={"day": day.isoformat(), "org_unit": college}
    )
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert {i["audience"] for i in items} == {"student", "staff"}
    student = next(i for i in items if i["audience"] == "student")
    assert (student["summary"]["present"], student["summary"]["fevers"]) == (1, 1)
    rid = student["id"]
    # The officer sees the lists with health detail; the liaison only the absent list.
    full = (await officer.get(f"/api/daily-reports/{rid}")).json()
    assert full["lists"]["fevers"][0]["person_id"] == s[1].id
    scoped = (await liaison.get(f"/api/daily-reports/{rid}")).json()
    assert set(scoped["lists"]) == {
        "absent",
        "never_screened",
        "visitors_refused",
        "checkin_missing",
    }
    assert scoped["health_lists_hidden"] is True
    assert scoped["summary"]["fevers"] == 1  # numbers are for everyone who reads reports
    page = await liaison.get(f"/api/daily-reports/{rid}/html")
    assert (
        page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    )
    assert "<svg" in page.text and 'id="list-fevers"' not in page.text
    assert 'id="list-absent"' in page.text  # who was absent is no health detail
    assert 'id="list-fevers"' in (await officer.get(f"/api/daily-reports/{rid}/html")).text
    csv_file = await liaison.get(f"/api/daily-reports/{rid}/csv")
    assert csv_file.headers["content-disposition"].endswith(f'-{day.isoformat()}.csv"')
    assert "Fevers (" not in csv_file.content.decode("utf-8-sig")
    xlsx = await officer.get(f"/api/daily-reports/{rid}/xlsx")
    assert "Fevers 发热人员" in load_workbook(io.BytesIO(xlsx.content)).sheetnames
    # Guards have no report permission at all.
    assert (await guard.get("/api/daily-reports")).status_code == 403
    listed = (await liaison.get("/api/daily-reports", params={"day": day.isoformat()})).json()
    assert {i["id"] for i in listed["items"]} == {i["id"] for i in items}


async def test_liaison_scope_and_bad_input(api):
    client, day, college, _ = api
    admin, liaison = client("admin"), client("liaison")
    made = await admin.post(
        "/api/daily-reports/generate", json={"day": day.isoformat(), "audience": "staff"}
    )
    assert made.status_code == 201
    ids = {i["org_unit_id"]: i["id"] for i in made.json()["items"]}
    assert None in ids and college in ids
    other = next(u for u in ids if u not in (None, college))
    assert (await liaison.get(f"/api/daily-reports/{ids[other]}")).status_code == 404
    assert (await liaison.get(f"/api/daily-reports/{ids[None]}/csv")).status_code == 404
    listed = (await liaison.get("/api/daily-reports")).json()["items"]
    assert {i["org_unit_id"] for i in listed} == {college}
    units = (await liaison.get("/api/daily-reports/units")).json()
    assert units["campus"] is False and units["scheduled"] == [college]
    # A liaison generates for their own unit by default, and nothing outside it.
    mine = await liaison.post("/api/daily-reports/generate", json={"day": day.isoformat()})
    assert {i["org_unit_id"] for i in mine.json()["items"]} == {college}
    for body in (
        {"day": day.isoformat(), "org_unit": "*"},
        {"day": day.isoformat(), "org_unit": other},
    ):
        assert (await liaison.post("/api/daily-reports/generate", json=body)).status_code == 403
    bad = [
        ({"day": "2026-13-01"}, 422),
        ({"day": (today() + timedelta(days=3)).isoformat()}, 422),
        ({"day": "0001-01-01"}, 422),
        ({"day": "9999-12-31"}, 422),
        ({"day": day.isoformat(), "org_unit": "nowhere"}, 404),
        ({"day": day.isoformat(), "audience": "visitor"}, 422),
    ]
    for body, code in bad:
        response = await admin.post("/api/daily-reports/generate", json=body)
        assert response.status_code == code, (body, response.text)
    assert (await admin.get("/api/daily-reports/999999")).status_code == 404
    assert (await admin.get("/api/daily-reports/nope")).status_code == 422
    assert (await admin.get("/api/daily-reports", params={"day": "yesterday"})).status_code == 422


async def test_send_and_resend_record_deliveries(api):
    client, day, college, _ = api
    officer = client("health_officer")
    made = await officer.post(
        "/api/daily-reports/generate",
        json={"day": day.isoformat(), "org_unit": college, "audience": "student", "send": True},
    )
    [item] = made.json()["items"]
    [delivery] = item["deliveries"]
    assert delivery["status"] == "failed" and delivery["sent_by"] == "health_officer"
    again = await officer.post(f"/api/daily-reports/{item['id']}/send", json={"only_failed": True})
    assert [d["status"] for d in again.json()["deliveries"]] == ["failed"]
    report = (await officer.get(f"/api/daily-reports/{item['id']}")).json()
    assert len(report["deliveries"]) == 2
    assert (await client("guard").post(f"/api/daily-reports/{item['id']}/send")).status_code == 403


async def test_unit_needs_through_the_api(api):
    """Passages, never screened and refused visitors as JSON, CSV, XLSX and HTML; a liaison
    sees who was refused but not that it was for a fever."""
    client, day, college, s = api
    officer, liaison = client("health_officer"), client("liaison")
    made = await liaison.post(
        "/api/daily-reports/generate", json={"day": day.isoformat(), "audience": "student"}
    )
    assert made.status_code == 201, made.text
    [item] = made.json()["items"]
    summary = item["summary"]
    assert item["org_unit_id"] == college  # the liaison's own unit
    assert summary["passages"] == {
        "total": 1, "in": 1, "out": 0, "by_zone_kind": {"gate": {"in": 1, "out": 0}},
    }  # fmt: skip
    assert summary["never_screened"] == 1  # s0 came in at the gate, where no one measures
    assert summary["visitors_refused"]["total"] == 1
    assert summary["visitors_refused"]["by_zone_kind"] == {"dormitory": 0, "lab": 1}
    assert "by_reason" not in summary["visitors_refused"]
    rid = item["id"]
    plain = (await liaison.get(f"/api/daily-reports/{rid}")).json()["lists"]
    full = (await officer.get(f"/api/daily-reports/{rid}")).json()["lists"]
    assert [r["person_id"] for r in plain["never_screened"]] == [s[0].id]
    assert full["never_screened"] == plain["never_screened"]  # no health detail in it
    assert [r["reason"] for r in plain["visitors_refused"]] == ["withheld"]
    assert [r["reason"] for r in full["visitors_refused"]] == ["fever"]
    assert all("celsius" not in r for r in full["visitors_refused"])
    for who, reason in ((liaison, "withheld"), (officer, "fever")):
        text = (await who.get(f"/api/daily-reports/{rid}/csv")).content.decode("utf-8-sig")
        assert "在校未测体温名单 / Present, never screened (1)" in text and s[0].id in text
        assert f"lab,{reason}" in text
        html = (await who.get(f"/api/daily-reports/{rid}/html")).text
        assert f"<td>{reason}</td>" in html and 'id="list-never_screened"' in html
        book = load_workbook(io.BytesIO((await who.get(f"/api/daily-reports/{rid}/xlsx")).content))
        rows = list(book["Visitors refused at dormitories"].iter_rows(values_only=True))
        assert rows[1][-1] == reason
