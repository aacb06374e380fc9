"""Device clocks end to end: simulated terminals with skewed clocks -> gateway -> the log and
the `clock_skew` alert (once per device, resolved when its clock is back in range)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.domain.alerts import AlertKind
from gateway.store import alerts as alert_store
from gateway.store.db import connect

YEAR_S = 365 * 24 * 3600.0


async def admitted(terminal, card: str, direction: str = "in") -> str:
    eid = terminal.swipe(card, direction=direction)
    decision = await terminal.decision(eid, timeout=10)
    assert (decision["decision"], decision["reason"]) == ("admit", "ok"), decision
    return eid


async def rows(dsn: str, device: str, event_ids: list[str]) -> dict[str, dict]:
    conn = await connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT event_id, device_ts, received_at, gateway_ts FROM access_events"
            " WHERE device_id = $1 AND event_id = ANY($2)",
            device,
            event_ids,
        )
    finally:
        await conn.close()
    return {r["event_id"]: dict(r) for r in found}


async def skew_alerts(dsn: str, device: str) -> list:
    conn = await connect(dsn)
    try:
        return [
            a
            for a in await alert_store.open_alerts(conn, AlertKind.CLOCK_SKEW)
            if a.device == device
        ]
    finally:
        await conn.close()


async def test_a_clock_hours_ahead_is_refused_and_flagged_once(
    gateway, fleet, alerts, campus, campus_dsn
):
    facts = campus.facts
    device = facts.gate_device
    terminal = fleet[device]
    card = facts.resident_cards[3]
    terminal.clock_skew_s = 3 * 3600.0
    try:
        skewed = [await admitted(terminal, card), await admitted(terminal, card)]
        terminal.heartbeat()
        alert = await alerts.wait_for("clock_skew", device=device)
        assert alert is not None and alert["severity"] == "low"
        assert alert["detail"]["skew_s"] >= 3 * 3600 - 60
        await gateway.journal.drain()
        logged = await rows(campus_dsn, device, skewed)
        for row in logged.values():  # decided and logged by the gateway's clock
            assert row["received_at"] == row["gateway_ts"]
            assert row["device_ts"] - row["gateway_ts"] > timedelta(hours=2)
        assert len(await skew_alerts(campus_dsn, device)) == 1  # once per device
        assert gateway.counters.device_time_refused >= 2
    finally:
        terminal.clock_skew_s = 0.0
    fixed = await admitted(terminal, card, "out")
    await gateway.journal.drain()
    row = (await rows(campus_dsn, device, [fixed]))[fixed]
    assert row["received_at"] == row["device_ts"] <= row["gateway_ts"]
    assert await skew_alerts(campus_dsn, device) == []  # back in range: resolved
    for _ in range(50):
        if len(alerts.matching("clock_skew", device=device)) >= 2:
            break
        await asyncio.sleep(0.1)
    assert [a["status"] for a in alerts.matching("clock_skew", device=device)] == [
        "open",
        "resolved",
    ]


async def test_a_clock_years_behind_is_refused_and_flagged(
    gateway, fleet, alerts, campus, campus_dsn
):
    facts = campus.facts
    device = facts.office_device
    terminal = fleet[device]
    terminal.clock_skew_s = -3 * YEAR_S
    try:
        eid = await admitted(terminal, facts.staff_card)
    finally:
        terminal.clock_skew_s = 0.0
    assert await alerts.wait_for("clock_skew", device=device) is not None
    await gateway.journal.drain()
    row = (await rows(campus_dsn, device, [eid]))[eid]
    assert row["received_at"] == row["gateway_ts"]
    assert row["gateway_ts"] - row["device_ts"] > timedelta(days=2 * 365)


async def test_a_clock_seconds_ahead_is_kept(gateway, fleet, alerts, campus, campus_dsn):
    facts = campus.facts
    device = facts.gate_exit_device
    terminal = fleet[device]
    terminal.clock_skew_s = 2.0  # within the tolerance: the device's time is logged
    try:
        eid = await admitted(terminal, facts.resident_cards[4], "out")
    finally:
        terminal.clock_skew_s = 0.0
    await gateway.journal.drain()
    row = (await rows(campus_dsn, device, [eid]))[eid]
    assert row["received_at"] == row["device_ts"] > row["gateway_ts"]
    assert alerts.matching("clock_skew", device=device) == []
