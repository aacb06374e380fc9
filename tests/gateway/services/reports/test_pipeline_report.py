"""Door events from simulated terminals, decided by a running gateway, counted in a report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from gateway_fixtures import running_gateway

from firmware_sim.terminal import SimTerminal
from gateway.domain.reports import Audience
from gateway.services.reports import generate_reports
from gateway.settings import Settings

from .conftest import today


@pytest.fixture
async def gateway(campus_conn, fresh_db, mqtt_url) -> AsyncIterator[str]:
    async with running_gateway(fresh_db, mqtt_url, label="r") as (_, prefix):
        yield prefix


async def _until(check, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_report_counts_real_door_events(
    campus_conn, small_campus, gateway, mqtt_url, tmp_path
):
    facts = small_campus.facts
    holder = {card: p for p in facts.people for card in p.cards}
    a, b = facts.resident_cards[0], facts.resident_cards[1]
    fever = facts.fever_cards[0]
    expected = {
        (facts.temperature_device, a, 36.5): ("admit", "ok"),
        (facts.temperature_device, b, 36.6): ("admit", "ok"),
        (facts.temperature_device, fever, 38.5): ("deny", "fever"),
        (facts.gate_device, facts.outsider_card, None): ("deny", "unknown_card"),
        (facts.gate_device, facts.isolated_card, None): ("deny", "health_hold"),
    }
    for (device, card, celsius), want in expected.items():
        async with SimTerminal(mqtt_url, device, prefix=gateway) as terminal:
            eid = terminal.swipe(card, celsius=celsius) if celsius else terminal.swipe(card)
            decision = await terminal.decision(eid, timeout=10)
        assert (decision["decision"], decision["reason"]) == want

    async def logged() -> bool:
        n = await campus_conn.fetchval("SELECT count(*) FROM access_events WHERE type = 'card'")
        status = await campus_conn.fetchval(
            "SELECT status FROM health_status WHERE person_id = $1", holder[fever].id
        )
        return n == len(expected) and status == "fever_watch"

    await _until(logged)
    [report] = await generate_reports(
        campus_conn, day=today(), settings=Settings(data_dir=tmp_path), by="test",
        org_units=[None], audiences=[Audience.STUDENT], now=datetime.now(UTC),
    )  # fmt: skip
    s = report.summary
    assert (s["present"], s["screenings"], s["fevers"]) == (2, 3, 1)
    assert s["denied"] == {"fever": 1, "health_hold": 1}
    assert s["outsiders_blocked"]["total"] == 1
    assert s["outsiders_blocked"]["by_door"] == {facts.gate_door: 1}
    assert s["health"]["fever_watch"] == 1
    [row] = report.lists["fevers"]
    assert (row["person_id"], row["celsius"]) == (holder[fever].id, 38.5)
    absent = {r["person_id"] for r in report.lists["absent"]}
    assert holder[a].id not in absent and holder[fever].id in absent


async def test_unit_needs_from_real_door_events(
    campus_conn, small_campus, gateway, mqtt_url, tmp_path
):
    """A visitor refused at a dormitory, a student admitted at the gate (no temperature
    there) and one screened at the dormitory's temperature door."""
    facts = small_campus.facts
    holder = {card: p for p in facts.people for card in p.cards}
    screened, unscreened = facts.resident_cards[0], facts.resident_cards[1]
    visitor = holder[facts.visitor_card]
    assert facts.temperature_door in facts.temperature_doors
    assert facts.gate_door not in facts.temperature_doors
    swipes = {
        (facts.temperature_device, facts.visitor_card, None): ("deny", "not_authorized"),
        (facts.gate_device, unscreened, None): ("admit", "ok"),
        (facts.temperature_device, screened, 36.4): ("admit", "ok"),
    }
    for (device, card, celsius), want in swipes.items():
        async with SimTerminal(mqtt_url, device, prefix=gateway) as terminal:
            eid = terminal.swipe(card, celsius=celsius) if celsius else terminal.swipe(card)
            decision = await terminal.decision(eid, timeout=10)
        assert (decision["decision"], decision["reason"]) == want

    async def logged() -> bool:
        n = await campus_conn.fetchval("SELECT count(*) FROM access_events WHERE type = 'card'")
        return n == len(swipes)

    await _until(logged)
    settings = Settings(data_dir=tmp_path)
    host = visitor.college
    campus, unit = await generate_reports(
        campus_conn, day=today(), settings=settings, by="test", org_units=[None, host],
        audiences=[Audience.STUDENT], now=datetime.now(UTC),
    )  # fmt: skip
    s = campus.summary
    assert s["passages"] == {
        "total": 2, "in": 2, "out": 0,
        "by_zone_kind": {"dormitory": {"in": 1, "out": 0}, "gate": {"in": 1, "out": 0}},
    }  # fmt: skip
    assert s["never_screened"] == 1
    [row] = campus.lists["never_screened"]
    assert (row["person_id"], row["first_passage_door"]) == (holder[unscreened].id, facts.gate_door)
    assert s["visitors_refused"]["total"] == 1 and s["outsiders_and_visitors"] == 1
    [refusal] = campus.lists["visitors_refused"]
    assert (refusal["person_id"], refusal["door_id"], refusal["zone_kind"], refusal["reason"]) == (
        visitor.id, facts.temperature_door, "dormitory", "not_authorized",
    )  # fmt: skip
    # The visitor's host unit reports them too.
    assert [r["person_id"] for r in unit.lists["visitors_refused"]] == [visitor.id]
