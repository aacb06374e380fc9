"""The door loop end to end: simulated terminals -> Mosquitto -> gateway -> PostgreSQL -> terminals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from firmware_sim import scenarios
from firmware_sim.fleet import Fleet
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.door_worker import Gateway
from gateway.store.alerts import get_alert
from gateway.store.db import connect
from gateway.store.health import set_health


def outcome(decision: dict) -> str:
    return f"{decision['decision']}/{decision['reason']}"


async def test_every_scenario_of_the_simulator(gateway, fleet, alerts, campus, window_s):
    results = await scenarios.run_all(
        fleet, campus.facts, alerts=alerts, include_slow=True, window_s=window_s, timeout=5.0
    )
    failed = [str(r) for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    assert gateway.counters.rejected >= 4  # the malformed scenario's payloads
    assert fleet.problems() == []


async def test_temperature_door_answers_pending_then_the_final_decision(gateway, fleet, campus):
    facts = campus.facts
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.resident_cards[0])
    pending = await terminal.wait_pending(eid, timeout=5)
    assert pending is not None and outcome(pending) == "pending/temperature_required"
    terminal.measure(36.6)
    assert outcome(await terminal.decision(eid, timeout=5)) == "admit/ok"
    assert len(terminal.finals(eid)) == 1 and len(terminal.pendings(eid)) == 1


async def test_no_reading_within_the_window_denies(gateway, fleet, campus, window_s):
    terminal = fleet[campus.facts.temperature_device]
    eid = terminal.swipe(campus.facts.resident_cards[1])
    decision = await terminal.decision(eid, timeout=window_s + 5)
    assert outcome(decision) == "deny/temperature_required"


async def test_zone_full_at_capacity(gateway, fleet, alerts, campus):
    staff = [p for p in campus.facts.people if p.kind == "staff" and p.active and not p.isolated]
    terminal = fleet["term-tiny-door"]
    first = terminal.swipe(staff[0].cards[0], direction="in")
    assert outcome(await terminal.decision(first)) == "admit/ok"
    second = terminal.swipe(staff[1].cards[0], direction="in")
    assert outcome(await terminal.decision(second)) == "deny/zone_full"
    assert await alerts.wait_for("zone_full", device="term-tiny-door") is not None
    leave = terminal.swipe(staff[0].cards[0], direction="out")
    assert outcome(await terminal.decision(leave)) == "admit/ok"
    again = terminal.swipe(staff[1].cards[0], direction="in")
    assert outcome(await terminal.decision(again)) == "admit/ok"
    out = terminal.swipe(staff[1].cards[0], direction="out")
    assert outcome(await terminal.decision(out)) == "admit/ok"


async def test_door_held_open_alert(gateway, fleet, alerts, campus):
    terminal = fleet[campus.facts.gate_device]
    terminal.door("held_open")
    alert = await alerts.wait_for("door_held_open", device=campus.facts.gate_device)
    assert (
        alert is not None
        and alert["severity"] == "medium"
        and alert["door"] == campus.facts.gate_door
    )


async def test_device_back_online_resolves_its_offline_alert(gateway, fleet, alerts, campus):
    terminal = fleet[campus.facts.office_device]
    await terminal.crash()
    offline = await alerts.wait_for("device_offline", device=campus.facts.office_device, timeout=10)
    assert offline is not None and offline.get("status", "open") == "open"
    await terminal.start()
    for _ in range(100):
        resolved = [
            a
            for a in alerts.matching("device_offline", device=campus.facts.office_device)
            if a["id"] == offline["id"] and a.get("status") == "resolved"
        ]
        if resolved:
            break
        await asyncio.sleep(0.05)
    assert resolved, "coming back online did not resolve the device_offline alert"


async def test_health_status_set_in_the_store_takes_effect_at_the_door(
    gateway, fleet, campus, campus_dsn
):
    facts = campus.facts
    # The last eligible staff member: the campus is shared by the session's tests.
    person = next(
        p
        for p in reversed(facts.people)
        if p.kind == "staff" and p.active and not p.isolated and p.cards
    )
    terminal = fleet[facts.office_device]
    eid = terminal.swipe(person.cards[0], direction="in")
    assert outcome(await terminal.decision(eid)) == "admit/ok"

    async def set_status(status: HealthStatus) -> None:
        conn = await connect(campus_dsn)
        try:
            record = HealthRecord(person.id, status, since=datetime.now(UTC), reason="traced")
            await set_health(conn, record, changed_by="test")
        finally:
            await conn.close()

    await set_status(HealthStatus.CLOSE_CONTACT)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            eid = terminal.swipe(person.cards[0], direction="in")
            result = outcome(await terminal.decision(eid))
            if result == "deny/health_hold":
                break
            assert loop.time() - started < 10, "the status never reached the door"
            await asyncio.sleep(0.05)
    finally:
        await set_status(HealthStatus.CLEAR)


async def test_every_decision_is_logged_once_with_its_latency(gateway, fleet, campus, campus_dsn):
    terminal = fleet[campus.facts.gate_device]
    ids = [terminal.swipe(card) for card in campus.facts.resident_cards[:20]]
    for eid in ids:
        await terminal.decision(eid)
    await gateway.journal.drain()
    conn = await asyncpg.connect(campus_dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, decision, latency_us FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
            campus.facts.gate_device,
            ids,
        )
    finally:
        await conn.close()
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
    assert all(r["decision"] == "admit" and r["latency_us"] is not None for r in rows)


@pytest.mark.parametrize("field", ["card_uid", "event_id", "ts"])
async def test_bad_event_is_rejected_and_the_next_is_decided(gateway, fleet, campus, field):
    import json

    terminal = fleet[campus.facts.gate_device]
    good = {
        "event_id": "x1",
        "ts": "2026-11-28T10:00:00+08:00",
        "type": "card",
        "card_uid": campus.facts.resident_cards[2],
    }
    bad = dict(good)
    bad[field] = 12345
    before = gateway.counters.rejected
    terminal.send_raw(json.dumps(bad).encode())
    eid = terminal.swipe(campus.facts.resident_cards[2])
    assert outcome(await terminal.decision(eid)) == "admit/ok"
    assert gateway.counters.rejected == before + 1
    assert gateway.counters.rejected_by_cause["wrong_type"] >= 1


async def test_bad_reading_is_denied_and_alerted(gateway, fleet, alerts, campus, campus_dsn):
    facts = campus.facts
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.resident_cards[6], celsius=33.0)
    assert outcome(await terminal.decision(eid)) == "deny/temperature_invalid"
    alert = await alerts.wait_for("temperature_invalid", device=facts.temperature_device)
    assert alert is not None and alert["severity"] == "low"
    assert "celsius" not in alert["detail"]  # a reading is health data: not on the broker
    conn = await connect(campus_dsn)
    try:
        stored = await get_alert(conn, alert["id"])
    finally:
        await conn.close()
    assert stored is not None and stored.detail["celsius"] == 33.0


async def test_fever_reading_nobody_claims_raises_a_fever_alert(
    gateway, fleet, alerts, campus, window_s
):
    """A 38.9 C reading at a temperature door with no card within the window: someone with a fever."""
    facts = campus.facts
    terminal = fleet[facts.temperature_device]
    terminal.measure(38.9)
    alert = await alerts.wait_for("fever", device=None, timeout=window_s + 5)
    assert alert is not None and alert["person"] is None and alert["door"] == facts.temperature_door


async def test_stopping_denies_cards_still_waiting_for_a_reading(
    campus, campus_dsn, mqtt_url, prefix, config_factory
):
    """A waiting card is not left for the broker to hand to the next gateway, where it
    would take the reading of whoever stands at the door then."""
    facts = campus.facts
    gateway = Gateway(config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
    await gateway.start()
    try:
        async with Fleet(mqtt_url, [facts.temperature_device], prefix=prefix) as fleet:
            terminal = fleet[facts.temperature_device]
            eid = terminal.swipe(facts.resident_cards[8])
            assert await terminal.wait_pending(eid) is not None
            await gateway.stop()
            assert outcome(await terminal.decision(eid)) == "deny/temperature_required"

            again = Gateway(config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
            await again.start()
            try:
                fresh = terminal.swipe(facts.resident_cards[9])
                await terminal.wait_pending(fresh)
                terminal.measure(36.6)
                assert outcome(await terminal.decision(fresh)) == "admit/ok"
                assert again.desk.waiting == 0
            finally:
                await again.stop()
    finally:
        await gateway.stop()


async def test_a_duplicate_after_a_restart_gets_the_original_decision(
    campus, campus_dsn, mqtt_url, prefix, config_factory
):
    facts = campus.facts
    async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
        terminal = fleet[facts.gate_device]
        first = Gateway(config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
        await first.start()
        try:
            eid = terminal.swipe(facts.resident_cards[3])
            original = await terminal.decision(eid)
        finally:
            await first.stop()
        assert original["message"].startswith("Welcome, ")
        second = Gateway(config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
        await second.start()
        try:
            terminal.resend(eid)
            answers = await terminal.wait_finals(eid, 2, timeout=5)
        finally:
            await second.stop()
    assert answers == [original, original]
