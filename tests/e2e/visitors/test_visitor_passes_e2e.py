"""Visitor passes at real doors: requested by a host, decided by the liaison, the QR token
scanned at a simulated terminal, decided by a running gateway on a real broker."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from visitors_campus import outcome

from gateway.services.visitor_overstay import overstay_job, raise_overstays
from gateway.store.db import connect, create_pool


def window(start_s: float = -60, end_s: float = 3600) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "starts_at": (now + timedelta(seconds=start_s)).isoformat(),
        "ends_at": (now + timedelta(seconds=end_s)).isoformat(),
    }


def pass_body(**changes) -> dict:
    body = {
        "visitor_name": "Zhao Lei",
        "phone": "13812345678",
        "id_number": "110101199003071234",
        "reason": "project meeting",
        "zones": ["office"],
        "places": ["Shanghai"],
        **window(),
    }
    body.update(changes)
    return body


async def requested(api, **changes) -> dict:
    response = await api.host.post("/api/me/visitor-passes", json=pass_body(**changes))
    assert response.status_code == 201, response.text
    return response.json()


async def approved(api, **changes) -> tuple[dict, str]:
    """A pass approved by the host's liaison, and its QR token."""
    made = await requested(api, **changes)
    response = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert response.status_code == 200, response.text
    qr = await api.host.get(f"/api/me/visitor-passes/{made['id']}/qr")
    assert qr.status_code == 200, qr.text
    return response.json(), qr.json()["token"]


async def scan(fleet, device: str, token: str, direction: str | None = None) -> str:
    terminal = fleet[device]
    eid = terminal.scan_qr(token, direction=direction)
    return outcome(await terminal.decision(eid, timeout=5))


async def until_outcome(fleet, device, token, wanted, timeout=5.0) -> float:
    """Scan until the door answers `wanted`; the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await scan(fleet, device, token) == wanted:
            return time.perf_counter() - started
        await asyncio.sleep(0.02)
    pytest.fail(f"{device} never answered {wanted} within {timeout} s")


async def test_host_requests_liaison_approves_qr_opens_pass_zones_only(api, gateway, fleet):
    made = await requested(api)
    assert made["status"] == "pending"
    assert made["phone"] == "138****5678" and made["id_number"] == "1101**********1234"
    assert made["area_matches"] == []
    # The other unit's liaison sees nothing and may not decide.
    other = await api["liaison-math"].get("/api/visitor-passes", params={"status": "pending"})
    assert other.status_code == 200 and other.json() == []
    refused = await api["liaison-math"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert refused.status_code == 404
    pending = await api["liaison-cs"].get("/api/visitor-passes", params={"status": "pending"})
    assert [p["id"] for p in pending.json()] == [made["id"]]
    # No QR before approval.
    assert (await api.host.get(f"/api/me/visitor-passes/{made['id']}/qr")).status_code == 409

    started = time.perf_counter()
    response = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert response.status_code == 200, response.text
    approve_s = time.perf_counter() - started
    token = (await api.host.get(f"/api/me/visitor-passes/{made['id']}/qr")).json()["token"]
    assert token.startswith("CGQ1.") and len(token) == 138
    delay = await until_outcome(fleet, "term-office", token, "admit/ok")
    print(
        f"\npass approval to door: approve took {approve_s * 1000:.0f} ms, first admit "
        f"{delay * 1000:.0f} ms later"
    )
    assert await scan(fleet, "term-lab", token) == "deny/not_authorized"
    assert await scan(fleet, "term-office", token, "out") == "admit/ok"
    # The operator's QR route gives a token of the same card.
    again = await api["liaison-cs"].get(f"/api/visitor-passes/{made['id']}/qr")
    assert again.status_code == 200
    assert await scan(fleet, "term-office", again.json()["token"]) == "admit/ok"

    revoked = await api["liaison-cs"].post(
        f"/api/visitor-passes/{made['id']}/revoke", json={"note": "left early"}
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    await until_outcome(fleet, "term-office", token, "deny/card_revoked")

    audit = await api["admin"].get("/api/audit", params={"entity": "visitor_pass"})
    actions = sorted(e["action"] for e in audit.json() if e["entity_id"] == str(made["id"]))
    # Every QR fetch is audited (host and liaison each fetched one; a 409 hands out nothing).
    assert actions == ["approve", "fetch_qr", "fetch_qr", "request", "revoke"]
    fetched = [
        e for e in audit.json() if e["entity_id"] == str(made["id"]) and e["action"] == "fetch_qr"
    ]
    assert sorted(e["operator"] for e in fetched) == ["liaison-cs", "person:T1"]
    assert all(token not in str(e) for e in fetched)  # the token itself is not logged


async def test_forged_altered_and_foreign_tokens_are_unknown_cards(api, gateway, fleet, alerts):
    _, token = await approved(api)
    await until_outcome(fleet, "term-office", token, "admit/ok")
    head, claims, signature = token.split(".")
    flipped = claims[:-2] + ("A" if claims[-2] != "A" else "B") + claims[-1]
    altered = f"{head}.{flipped}.{signature}"
    forged = f"{head}.{claims}.{'A' * 86}"
    since = alerts.mark()
    for bad in (altered, forged, "not a token", token[:-1]):
        assert await scan(fleet, "term-office", bad) == "deny/unknown_card"
    invalid = gateway.counters.qr_invalid
    assert sum(invalid.values()) == 4, invalid
    assert invalid["malformed"] == 2 and invalid["bad_signature"] + invalid["wrong_key"] == 2
    await alerts.wait_for("outsider", device="term-office", since=since)
    # A token signed by another key (another campus) names the same card: still refused.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from devices.codecs.visitor_qr import decode_token, encode_token

    own_key = gateway.signer.info.public_raw
    claims_of = decode_token(token, own_key)
    other = Ed25519PrivateKey.generate()
    foreign = encode_token(
        claims_of,
        other.public_key().public_bytes_raw(),
        other.sign,
    )
    assert await scan(fleet, "term-office", foreign) == "deny/unknown_card"
    assert gateway.counters.qr_invalid["wrong_key"] >= 1


async def test_window_end_denies_and_overstay_alerts_once(api, gateway, fleet, campus_dsn):
    made, token = await approved(api, **window(-60, 4))
    assert await until_outcome(fleet, "term-office", token, "admit/ok") >= 0
    end = datetime.fromisoformat(made["ends_at"])
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.2)
    # The holder expired with the pass (the roster reload brought its valid_until).
    assert await scan(fleet, "term-office", token) == "deny/card_revoked"
    conn = await connect(campus_dsn)
    try:
        raised = []
        deadline = time.perf_counter() + 5  # the admitted passage reaches the log in batches
        while not raised and time.perf_counter() < deadline:
            raised = await raise_overstays(conn, datetime.now(UTC))
            await asyncio.sleep(0.1)
        assert [a.kind.value for a in raised] == ["visitor_overstay"]
        assert raised[0].person == made["visitor_person_id"]
        assert raised[0].detail["pass_id"] == made["id"]
        assert await raise_overstays(conn, datetime.now(UTC)) == []
        stored = await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'visitor_overstay'")
        assert stored == 1
    finally:
        await conn.close()
    # Guards and the host's liaison see it.
    for who in ("guard", "liaison-cs"):
        listed = await api[who].get("/api/alerts", params={"kind": "visitor_overstay"})
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == 1, who
    # Leaving is free: the overstaying visitor is let out, logged as the visitor.
    assert await scan(fleet, "term-office", token, "out") == "admit/ok"


async def test_overstay_is_published_on_mqtt_once_without_the_visitors_details(
    api, gateway, fleet, alerts, campus_dsn
):
    made, token = await approved(api, **window(-60, 3))
    assert await until_outcome(fleet, "term-office", token, "admit/ok") >= 0
    end = datetime.fromisoformat(made["ends_at"])
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.2)
    # The job as the API process's scheduler runs it: no broker client there.
    pool = await create_pool(campus_dsn, min_size=1, max_size=1)
    try:
        job, ran = overstay_job(pool), {"raised": 0}
        deadline = time.perf_counter() + 5  # the admitted passage reaches the log in batches
        while not ran["raised"] and time.perf_counter() < deadline:
            ran = await job.run(datetime.now(UTC))
            await asyncio.sleep(0.1)
        assert ran == {"raised": 1}
        raised_at = time.perf_counter()
    finally:
        await pool.close()
    published = await alerts.wait_for("visitor_overstay", timeout=10)
    assert published is not None, "visitor_overstay never reached P/alerts/visitor_overstay"
    print(f"\noverstay stored to published on MQTT: {time.perf_counter() - raised_at:.2f} s")
    listed = (await api["guard"].get("/api/alerts", params={"kind": "visitor_overstay"})).json()
    assert [a["id"] for a in listed] == [published["id"]]
    assert published["severity"] == "medium" and published["status"] == "open"
    assert published["person"] == made["visitor_person_id"]
    assert (published["door"], published["zone"]) == ("office-door", "office")
    assert published["detail"]["pass_id"] == made["id"]
    assert sorted(published["detail"]) == ["entered_at", "pass_ended", "pass_id", "zones"]
    # The person is the pass's id: the visitor's name, phone, ID number and reason stay in
    # the store, where the API masks them.
    wire = json.dumps(published, ensure_ascii=False)
    for personal in ("Zhao Lei", "13812345678", "110101199003071234", "project meeting"):
        assert personal not in wire
    assert await gateway.relay.relay() == 0  # claimed once: never published again
    assert len(alerts.matching("visitor_overstay")) == 1


async def test_before_its_start_a_pass_opens_nothing(api, gateway, fleet):
    _, token = await approved(api, **window(3600, 7200))
    await until_outcome(fleet, "term-office", token, "deny/not_authorized")


async def test_a_lab_pass_needs_an_admin(api, gateway, fleet):
    made = await requested(api, zones=["office", "lab"])
    liaison = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert liaison.status_code == 403
    assert "lab zone(s) lab: an admin must approve" in liaison.json()["detail"]
    admin = await api["admin"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert admin.status_code == 200, admin.text
    token = (await api.host.get(f"/api/me/visitor-passes/{made['id']}/qr")).json()["token"]
    await until_outcome(fleet, "term-lab", token, "admit/ok")


async def test_refused_pass_issues_nothing(api, gateway, campus_dsn):
    made = await requested(api)
    no_note = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/refuse", json={})
    assert no_note.status_code == 422
    response = await api["liaison-cs"].post(
        f"/api/visitor-passes/{made['id']}/refuse", json={"note": "no host on that day"}
    )
    assert response.status_code == 200 and response.json()["status"] == "refused"
    assert response.json()["card_uid"] is None
    assert (await api.host.get(f"/api/me/visitor-passes/{made['id']}/qr")).status_code == 409
    late = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert late.status_code == 409
    conn = await connect(campus_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM people WHERE kind = 'visitor'") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (window(0, 8 * 86400), "ends_at", "at most 7 days"),
        (window(3600, 60), "ends_at", "after starts_at"),
        ({"zones": ["nowhere"]}, "zones", "unknown zone"),
        ({"visitor_name": "x" * 201}, "visitor_name", "at most 200"),
        ({"reason": "y" * 501}, "reason", "at most 500"),
        ({"phone": "call me"}, "phone", "phone"),
        ({"id_number": "12-34-!!"}, "id_number", "id_number"),
        ({"zones": []}, "zones", "at least 1"),
    ],
)
async def test_bad_requests_are_422_naming_the_field(api, changes, field, words):
    response = await api.host.post("/api/me/visitor-passes", json=pass_body(**changes))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in e["loc"] and words in e["msg"] for e in errors), errors


async def test_unknown_host_and_non_staff_host_are_422(api):
    for host in ("nobody", "S1"):
        body = {**pass_body(), "host_id": host}
        response = await api["admin"].post("/api/visitor-passes", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "host_id"]
    ok = await api["admin"].post("/api/visitor-passes", json={**pass_body(), "host_id": "T1"})
    assert ok.status_code == 201
    # A liaison may decide, not request on someone's behalf.
    denied = await api["liaison-cs"].post(
        "/api/visitor-passes", json={**pass_body(), "host_id": "T1"}
    )
    assert denied.status_code == 403


async def test_unmask_is_audited_and_restricted(api):
    made = await requested(api)
    masked = await api["liaison-cs"].get(f"/api/visitor-passes/{made['id']}")
    assert masked.json()["phone"] == "138****5678"
    assert (
        await api["liaison-cs"].get(f"/api/visitor-passes/{made['id']}", params={"unmask": True})
    ).status_code == 403
    full = await api["admin"].get(f"/api/visitor-passes/{made['id']}", params={"unmask": True})
    assert full.json()["phone"] == "13812345678"
    assert full.json()["id_number"] == "110101199003071234"
    audit = await api["admin"].get("/api/audit", params={"entity": "visitor_pass"})
    assert any(e["action"] == "unmask" and e["operator"] == "admin" for e in audit.json())


async def test_epidemic_area_match_refuses_by_default(api):
    area = await api["health_officer"].post(
        "/api/travel/areas", json={"name": "Wuhan", "match": "武汉"}
    )
    assert area.status_code == 201, area.text
    made = await requested(api, places=["Shanghai", "湖北省武汉市洪山区"])
    assert made["area_matches"] == ["Wuhan"]
    plain = await api["liaison-cs"].post(f"/api/visitor-passes/{made['id']}/approve", json={})
    assert plain.status_code == 409 and "Wuhan" in plain.json()["detail"]
    accepted = await api["liaison-cs"].post(
        f"/api/visitor-passes/{made['id']}/approve",
        json={"accept_area_match": True, "note": "tested negative on arrival"},
    )
    assert accepted.status_code == 200 and accepted.json()["status"] == "approved"


async def test_lockdown_bars_the_visitor(api, gateway, fleet):
    _, token = await approved(api)
    await until_outcome(fleet, "term-office", token, "admit/ok")
    await fleet["term-office"].decision(fleet["term-office"].scan_qr(token, direction="out"))
    response = await api["health_officer"].put("/api/levels", json={"level": "lockdown"})
    assert response.status_code == 200, response.text
    await until_outcome(fleet, "term-office", token, "deny/not_authorized")
    # Staff still pass (a lockdown asks a temperature at every door).
    terminal = fleet["term-office"]
    eid = terminal.swipe("0B000001", celsius=36.5)
    assert outcome(await terminal.decision(eid, timeout=5)) == "admit/ok"


async def test_exports_hold_the_pass_for_host_and_visitor(api):
    made, _ = await approved(api)
    # The visitor's contact is theirs: in full in their own export, masked in the host's.
    for person, id_number in (
        ("T1", "1101**********1234"),
        (made["visitor_person_id"], "110101199003071234"),
    ):
        response = await api["admin"].get(f"/api/people/{person}/export")
        assert response.status_code == 200, response.text
        passes = response.json()["visitor_passes"]
        assert [p["id"] for p in passes] == [made["id"]]
        assert passes[0]["id_number"] == id_number


async def test_sim_cli_scans_a_token(api, gateway, fleet, mqtt_url, prefix):
    from gateway.cli.sim import scan_qr
    from gateway.settings import Settings

    _, token = await approved(api)
    await until_outcome(fleet, "term-office", token, "admit/ok")
    await fleet["term-office"].decision(fleet["term-office"].scan_qr(token, direction="out"))
    settings = Settings(mqtt_url=mqtt_url, topic_prefix=prefix)
    decision = await scan_qr(settings, "term-lab", token, None, 5.0)
    assert outcome(decision) == "deny/not_authorized"
    decision = await scan_qr(settings, "term-office", token, "in", 5.0)
    assert outcome(decision) == "admit/ok"


async def test_temperature_rules_still_apply(api, gateway, fleet):
    _, token = await approved(api, zones=["clinic"])
    clinic = fleet["term-clinic"]

    async def scanned_with(celsius: float) -> str:
        eid = clinic.scan_qr(token)
        pending = await clinic.wait_pending(eid, timeout=5)
        if pending is None:  # not in the roster yet: a final deny came at once
            return outcome(await clinic.decision(eid, timeout=5))
        assert outcome(pending) == "pending/temperature_required"
        clinic.measure(celsius)
        return outcome(await clinic.decision(eid, timeout=5))

    deadline = time.perf_counter() + 5
    result = await scanned_with(36.6)
    while result == "deny/unknown_card" and time.perf_counter() < deadline:
        result = await scanned_with(36.6)
    assert result == "admit/ok"
    await clinic.decision(clinic.scan_qr(token, direction="out"))
    assert await scanned_with(38.2) == "deny/fever"
