"""The database goes away mid-stream: decisions wait, nothing is lost, all arrive after."""

from __future__ import annotations

import asyncio

import asyncpg
from db_proxy import FaultyProxy

from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway


async def test_decisions_wait_for_the_database_and_none_is_lost(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    proxy = FaultyProxy(campus_dsn)
    await proxy.start()
    gateway = Gateway(config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
    await gateway.start()
    facts = campus.facts
    try:
        async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
            terminal = fleet[facts.gate_device]
            first = terminal.swipe(facts.resident_cards[0])
            assert (await terminal.decision(first))["decision"] == "admit"

            proxy.cut()
            during = [terminal.swipe(facts.resident_cards[k % 10]) for k in range(30)]
            await asyncio.sleep(1.5)
            assert not any(terminal.finals(eid) for eid in during), (
                "a decision was sent before it was durable"
            )
            assert gateway.journal.failures >= 1

            proxy.accept()
            for eid in during:
                assert (await terminal.decision(eid, timeout=30))["decision"] == "admit"
    finally:
        await gateway.stop()
        await proxy.stop()

    conn = await asyncpg.connect(campus_dsn)
    try:
        logged = await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
            facts.gate_device,
            during,
        )
    finally:
        await conn.close()
    assert logged == len(during)
