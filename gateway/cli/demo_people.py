"""The demo's people-facing showcase (issue #15): a student's check-in page with a login,
and a visitor pass a staff host requests, the demo's admin approves and a door reads.

Everything goes through the running API, as a phone and the console would: the person
signs in with a password set from an invitation (a real person session), the host asks
for the pass on their own page, the admin approves it with an operator session.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console

from firmware_sim.campus_facts import CampusFacts, SimPerson
from firmware_sim.fleet import Fleet
from firmware_sim.scenarios import ScenarioResult
from firmware_sim.scenarios.checks import final
from gateway.services.person_accounts import DEFAULT_INVITATION_LIFETIME, invite
from gateway.store.db import connect

CSRF_HEADER = "X-CSRF-Token"
PASS_HOURS = 2
ADMIT_WITHIN_S = 10.0  # the approval reaches the gateways through the roster NOTIFY
# The demo's API runs at SCHED_IDLE (as under serve): on a busy host a login (an argon2
# hash) or a check-in waits for idle CPU, so the demo waits longer than a user would.
HTTP_TIMEOUT_S = 60.0


def _student(facts: CampusFacts) -> SimPerson:
    """An active, healthy student outside the showcase's reserved cards."""
    reserved = set(facts.fever_cards) | set(facts.resident_cards[:4])
    for person in facts.people:
        usable = person.active and not person.isolated and person.cards
        if person.kind == "student" and usable and not set(person.cards) & reserved:
            return person
    raise LookupError("the sample campus has no student for the showcase")


def _holder(facts: CampusFacts, card: str) -> SimPerson:
    return next(p for p in facts.people if card in p.cards)


async def person_password(dsn: str, url: str, person_id: str) -> tuple[str, str]:
    """Invite the person, then accept the invitation through the API with a fresh password,
    as the person would on /me/#invite=...; (invitation link, password)."""
    conn = await connect(dsn)
    try:
        token, _ = await invite(conn, person_id, by="demo", lifetime=DEFAULT_INVITATION_LIFETIME)
    finally:
        await conn.close()
    password = secrets.token_urlsafe(12)
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
        accepted = await http.post(
            "/api/person/invitation/accept", json={"token": token, "password": password}
        )
        accepted.raise_for_status()
    return f"{url}me/#invite={token}", password


async def person_client(url: str, person_id: str, password: str) -> httpx.AsyncClient:
    """An HTTP client signed in as the person (cookie session and its CSRF header)."""
    http = httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S)
    signed = await http.post(
        "/api/person/login", json={"person_id": person_id, "password": password}
    )
    if signed.status_code != 200:
        await http.aclose()
        raise RuntimeError(f"sign-in as {person_id}: HTTP {signed.status_code} {signed.text}")
    http.headers[CSRF_HEADER] = signed.json()["csrf_token"]
    return http


async def operator_client(url: str, name: str, password: str) -> httpx.AsyncClient:
    """An HTTP client logged in as a console operator."""
    http = httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S)
    signed = await http.post("/api/auth/login", json={"name": name, "password": password})
    if signed.status_code != 200:
        await http.aclose()
        raise RuntimeError(f"login as {name}: HTTP {signed.status_code} {signed.text}")
    http.headers[CSRF_HEADER] = signed.json()["csrf_token"]
    return http


async def show_checkin(dsn: str, url: str, facts: CampusFacts, console: Console) -> ScenarioResult:
    """A student's password from an invitation, a sign-in and today's check-in, via the API."""
    result = ScenarioResult("a student checks in on the phone page")
    student = _student(facts)
    _, password = await person_password(dsn, url, student.id)
    console.print(
        f"[bold]check-in page[/bold]: {url}me/  sign in as {student.id} / {password}  "
        "(a demo student; the password was set from an invitation link)",
        highlight=False,
    )
    http = await person_client(url, student.id, password)
    try:
        body: dict[str, Any] = {
            "location": "on_campus",
            "dormitory": student.dorm or "dormitory",
            "temperature_c": 36.6,
            "symptoms": [],
            "case_contact": False,
        }
        answer = await http.post("/api/me/checkin", json=body)
        result.expect("POST /api/me/checkin as the student", "200", str(answer.status_code))
        if answer.status_code == 200:
            made = answer.json()
            console.print(
                f"  check-in of {student.id}: day {made['day']}, hold {made['hold']}, "
                f"{'updated today' if made['updated'] else 'first today'}",
                highlight=False,
            )
            result.expect("hold after a normal check-in", "None", str(made["hold"]))
        today = await http.get("/api/me/checkins")
        stored = today.json().get("today") if today.status_code == 200 else None
        result.expect(
            "today's check-in read back", "36.6", str(stored and stored.get("temperature_c"))
        )
        other = next(p.id for p in facts.people if p.id != student.id)
        theirs = await http.get(f"/api/people/{other}")
        result.expect(f"the student reads {other}'s record", "401", str(theirs.status_code))
    finally:
        await http.aclose()
    return result


async def _scan_until(fleet: Fleet, device: str, token: str, wanted: str) -> str:
    """Scan the QR at `device` until it answers `wanted` (the roster reload is quick, not
    instant); the last answer."""
    terminal = fleet[device]
    deadline = time.monotonic() + ADMIT_WITHIN_S
    got = "no decision"
    while time.monotonic() < deadline:
        got = await final(terminal, terminal.scan_qr(token), 5.0)
        if got == wanted:
            break
        await asyncio.sleep(0.2)
    return got


async def show_visitor_pass(
    fleet: Fleet,
    dsn: str,
    url: str,
    facts: CampusFacts,
    admin: tuple[str, str],
    console: Console,
) -> ScenarioResult:
    """A staff host requests a pass to the office zone, the admin approves it, the QR token
    is scanned: admitted at the office door, denied at the lab's."""
    result = ScenarioResult("a visitor pass at the doors")
    host = _holder(facts, facts.staff_card)  # staff, admitted at the office door
    zone = facts.door_zones[facts.office_door]
    _, password = await person_password(dsn, url, host.id)
    now = datetime.now(UTC)
    request = {
        "visitor_name": "Demo Visitor",
        "phone": "13800138000",
        "id_number": "110101199003071234",
        "reason": "the demo's visit",
        "zones": [zone],
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=PASS_HOURS)).isoformat(),
        "places": [],
    }
    http = await person_client(url, host.id, password)
    operator = await operator_client(url, *admin)
    try:
        made = await http.post("/api/me/visitor-passes", json=request)
        result.expect(f"{host.id} requests a pass to {zone}", "201", str(made.status_code))
        if made.status_code != 201:
            return result
        pass_id = made.json()["id"]
        approved = await operator.post(f"/api/visitor-passes/{pass_id}/approve", json={})
        result.expect(f"{admin[0]} approves pass {pass_id}", "200", str(approved.status_code))
        qr = await http.get(f"/api/me/visitor-passes/{pass_id}/qr")
        result.expect("the host fetches its QR token", "200", str(qr.status_code))
        if qr.status_code != 200:
            return result
        token = qr.json()["token"]
        admitted = await _scan_until(fleet, facts.office_device, token, "admit/ok")
        result.expect(f"QR at {facts.office_device} ({zone})", "admit/ok", admitted)
        lab = facts.door_zones[facts.lab_door]
        denied = await final(fleet[facts.lab_device], fleet[facts.lab_device].scan_qr(token), 5.0)
        result.expect(f"QR at {facts.lab_device} ({lab})", "deny/not_authorized", denied)
        if facts.door_directions.get(facts.office_door) in ("out", "both"):
            office = fleet[facts.office_device]
            await final(office, office.scan_qr(token, direction="out"), 5.0)  # leaves again
        console.print(
            f"  pass {pass_id}: host {host.id}, approved by {admin[0]}, zone {zone} for "
            f"{PASS_HOURS} h; QR {token[:24]}... ({len(token)} characters)",
            highlight=False,
        )
    finally:
        await http.aclose()
        await operator.aclose()
    return result
