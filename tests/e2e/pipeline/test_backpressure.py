"""A long database outage holds the gateway back without costing its MQTT connection.

The journal's high-water mark is lowered so that a few seconds of outage pass it, and the
keepalive is short so that a gateway that stopped reading its socket would lose its
connection within the outage (as it did: paho saw no PINGRESP, dropped the connection and
the queued acks, could not read the CONNACK of its reconnect, and the broker redelivered
everything, which was answered twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import asyncpg
from db_proxy import FaultyProxy

from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway

RATE_PER_TERMINAL = 15.0
OUTAGE_S = 9.0


async def swipe_for(fleet: Fleet, cards: list[str], seconds: float) -> list[tuple[str, str]]:
    sent: list[tuple[str, str]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    k = 0
    while loop.time() < end:
        for terminal in fleet:
            sent.append((terminal.device_id, terminal.swipe(cards[k % len(cards)])))
            k += 1
        await asyncio.sleep(1 / RATE_PER_TERMINAL)
    return sent


async def test_outage_past_the_high_water_mark_keeps_the_connection_and_answers_once(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    proxy = FaultyProxy(campus_dsn)
    await proxy.start()
    config = dataclasses.replace(
        config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        journal_high_water=100,
        mqtt_keepalive_s=2,
        late_after_s=3.0,
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device, facts.lab_device]
    cards = facts.resident_cards[:10]
    try:
        async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
            before = await swipe_for(fleet, cards, 1.0)
            for device_id, eid in before:  # decided before the outage, on a loaded machine too
                await fleet[device_id].decision(eid, timeout=30)
            proxy.cut()
            during = await swipe_for(fleet, cards, OUTAGE_S)
            backlog = gateway.journal.backlog
            proxy.accept()
            after = await swipe_for(fleet, cards, 1.0)
            sent = before + during + after
            for device_id, eid in sent:
                await fleet[device_id].decision(eid, timeout=30)
            await asyncio.sleep(1.0)  # anything answered twice arrives by now

            assert backlog >= config.journal_high_water, "the outage stayed below the mark"
            assert gateway.mqtt.reconnects == 0, "back-pressure cost the MQTT connection"
            finals = Counter(
                (t.device_id, eid) for t in fleet for eid in t.sent for _ in t.finals(eid)
            )
            twice = [key for key in sent if finals[key] != 1]
            assert not twice, f"{len(twice)} of {len(sent)} events not answered exactly once"
            assert not [p for t in fleet for p in t.problems()]
            # The outage outlasted the late bound: its early decisions opened no door.
            late = {eid for t in fleet for eid in t.late}
            assert late and late <= {eid for _, eid in during}
            for device_id, eid in during:
                final = fleet[device_id].finals(eid)[0]
                assert final["late"] is (eid in late)
                if final["late"]:
                    assert final["unlock_ms"] == 0
            assert gateway.counters.late == len(late)
    finally:
        await gateway.stop()
        await proxy.stop()

    conn = await asyncpg.connect(campus_dsn)
    try:
        rows = await conn.fetch(
            "SELECT device_id, event_id, count(*) AS n FROM access_events"
            " WHERE device_id = ANY($1) AND event_id = ANY($2) GROUP BY 1, 2",
            devices,
            [eid for _, eid in sent],
        )
    finally:
        await conn.close()
    assert len(rows) == len(sent) and all(r["n"] == 1 for r in rows), "one log row per event"
