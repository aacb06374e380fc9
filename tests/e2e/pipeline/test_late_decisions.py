"""A decision sent long after its card event opens no door, and decisions expire at the broker."""

from __future__ import annotations

import asyncio
import dataclasses

from db_proxy import FaultyProxy

from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway

LATE_AFTER_S = 2.0


async def test_a_decision_past_the_bound_is_late_and_every_decision_expires(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    proxy = FaultyProxy(campus_dsn)
    await proxy.start()
    config = dataclasses.replace(
        config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        late_after_s=LATE_AFTER_S,
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts
    card = facts.resident_cards[0]
    try:
        async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
            terminal = fleet[facts.gate_device]
            on_time = terminal.swipe(card)
            first = await terminal.decision(on_time)
            assert first["decision"] == "admit" and first["unlock_ms"] > 0
            assert first["late"] is False
            assert on_time in terminal.unlocked

            proxy.cut()
            stale = terminal.swipe(card)
            await asyncio.sleep(LATE_AFTER_S + 1.5)
            proxy.accept()
            late = await terminal.decision(stale, timeout=30)
            assert late["decision"] == "admit" and late["reason"] == "ok"
            assert late["late"] is True and late["unlock_ms"] == 0
            assert stale in terminal.late and stale not in terminal.unlocked
            assert gateway.counters.late == 1

            # Every decision carries a message expiry a little longer than the bound.
            expiries = [c.expiry_s for c in terminal.commands if c.type == "decision"]
            assert expiries and all(e is not None for e in expiries)
            assert all(0 < e <= LATE_AFTER_S + 2 for e in expiries)
    finally:
        await gateway.stop()
        await proxy.stop()


async def test_a_terminal_offline_past_the_expiry_never_receives_the_old_decision(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    proxy = FaultyProxy(campus_dsn)
    await proxy.start()
    config = dataclasses.replace(
        config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        late_after_s=LATE_AFTER_S,
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts
    card = facts.resident_cards[1]
    try:
        # A terminal with a session the broker keeps while it is away.
        async with Fleet(
            mqtt_url, [facts.gate_device], prefix=prefix, session_expiry_s=60
        ) as fleet:
            terminal = fleet[facts.gate_device]
            assert (await terminal.decision(terminal.swipe(card)))["decision"] == "admit"
            proxy.cut()
            old = terminal.swipe(card)
            await asyncio.sleep(0.3)  # the event reaches the gateway before the terminal goes
            await terminal.crash()
            proxy.accept()
            await gateway.journal.drain()
            logged_at = asyncio.get_running_loop().time()
            # Its decision waits in the terminal's session, then expires there.
            await asyncio.sleep(LATE_AFTER_S + 2 + 1.5)
            await terminal.start()
            fresh = terminal.swipe(card)
            assert (await terminal.decision(fresh))["decision"] == "admit"
            await asyncio.sleep(0.5)
            assert asyncio.get_running_loop().time() - logged_at > LATE_AFTER_S + 2
            assert terminal.finals(old) == [], "an expired decision reached the terminal"
    finally:
        await gateway.stop()
        await proxy.stop()
