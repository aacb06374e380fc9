"""A SIGKILLed Mosquitto, run with the shipped configuration, comes back without losing events.

The broker is started from deploy/mosquitto/mosquitto.conf with its persistence in a
private directory, killed under traffic and started again on the same port. Before the
config saved its database every second, the broker came back without the gateway's
session, and every event published before the gateway had subscribed again was dropped.

Even saving every second (Mosquitto 2.0 in fact saves every other second), a killed
broker comes back from its last save: what it acknowledged since is gone, events and
decisions alike, and what was delivered since comes again. Terminals therefore republish
their unanswered card events after a reconnect and act on one final decision per event
(docs/protocol.md, "Terminals keep unanswered events").
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from broker_fixtures import start_mosquitto

from devices.transports.mqtt import BrokerAddress, MqttClient, MqttError
from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway

RATE_PER_TERMINAL = 25.0
DOWN_S = 0.5


async def test_broker_sigkill_under_traffic_loses_no_event(
    campus_dsn, prefix, campus, config_factory, tmp_path
):
    proc, port = start_mosquitto(tmp_path, persistent=True)
    url = f"mqtt://127.0.0.1:{port}"
    config = dataclasses.replace(
        config_factory(campus_dsn, url, prefix, client_id=f"gw-{prefix}"), late_after_s=60.0
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device, facts.lab_device, facts.dorm_exit_device]
    cards = facts.resident_cards[:10]
    sent: list[tuple[str, str]] = []
    loop = asyncio.get_running_loop()
    try:
        async with Fleet(url, devices, prefix=prefix, session_expiry_s=300) as fleet:
            await asyncio.sleep(1.5)  # past one autosave: the sessions are on disk

            async def traffic(seconds: float) -> None:
                end = loop.time() + seconds
                k = 0
                while loop.time() < end:
                    for terminal in fleet:
                        # Published while the broker is down, it waits in the terminal.
                        sent.append((terminal.device_id, terminal.swipe(cards[k % len(cards)])))
                        k += 1
                    await asyncio.sleep(1 / RATE_PER_TERMINAL)

            load = asyncio.create_task(traffic(6.0))
            await asyncio.sleep(2.5)
            proc.kill()
            proc.wait(5)
            await asyncio.sleep(DOWN_S)
            proc, _ = start_mosquitto(tmp_path, port=port, persistent=True)
            await load
            deadline = loop.time() + 20
            missing = []
            for device_id, eid in sent:
                try:
                    await fleet[device_id].decision(eid, timeout=max(deadline - loop.time(), 0.01))
                except TimeoutError:
                    missing.append(eid)
            await asyncio.sleep(1.0)
            assert not missing, f"{len(missing)} of {len(sent)} events never answered"
            opened = Counter((t.device_id, eid) for t in fleet for eid in t.unlocked)
            twice = [key for key, n in opened.items() if n > 1]
            assert not twice, f"{len(twice)} of {len(sent)} events opened the door twice"
            verdicts = {
                key: {(f["decision"], f["reason"]) for f in fleet[key[0]].finals(key[1])}
                for key in sent
            }
            assert all(len(v) == 1 for v in verdicts.values()), "a repeat changed a verdict"
            assert gateway.mqtt.reconnects >= 1, "the broker was not restarted under the gateway"
    finally:
        await gateway.stop()
        proc.kill()
        proc.wait(5)

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


def _saves(log: Path) -> int:
    return log.read_text().count("Saving in-memory database")


async def _next_save(log: Path, timeout: float = 10.0) -> None:
    """Return just after the broker logs its next autosave."""
    before = _saves(log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _saves(log) == before:
        assert loop.time() < deadline, "the broker did not save its database"
        await asyncio.sleep(0.02)


async def test_events_the_killed_broker_acknowledged_but_never_saved_are_answered(
    campus_dsn, prefix, campus, config_factory, tmp_path
):
    """Events the broker acknowledged to the terminals right after a save, queued for a
    gateway that was away, die with the broker; the terminals republish them once they
    are connected again, and each is decided, answered and logged once."""
    proc, port = start_mosquitto(tmp_path, persistent=True)
    log = tmp_path / f"mosquitto-{port}.log"
    url = f"mqtt://127.0.0.1:{port}"
    config = dataclasses.replace(
        config_factory(campus_dsn, url, prefix, client_id=f"gw-{prefix}"), late_after_s=60.0
    )
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device]
    cards = facts.resident_cards[:10]
    gateway = Gateway(config)
    await gateway.start()
    sent: list[tuple[str, str]] = []
    try:
        async with Fleet(url, devices, prefix=prefix, session_expiry_s=300) as fleet:
            for terminal in fleet:  # the gateway's and the terminals' sessions exist
                await terminal.decision(terminal.swipe(cards[0]))
            await gateway.stop()  # away: its session keeps what comes meanwhile
            await _next_save(log)
            await _next_save(log)  # the sessions are on disk
            for k in range(20):
                terminal = fleet[devices[k % 2]]
                sent.append((terminal.device_id, terminal.swipe(cards[k % len(cards)])))
            await asyncio.sleep(0.3)  # acknowledged by the broker, well before its next save
            proc.kill()
            proc.wait(5)
            proc, _ = start_mosquitto(tmp_path, port=port, persistent=True)
            gateway = Gateway(config)
            await gateway.start()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            missing = []
            for device_id, eid in sent:
                try:
                    await fleet[device_id].decision(eid, timeout=max(deadline - loop.time(), 0.01))
                except TimeoutError:
                    missing.append(eid)
            assert not missing, f"{len(missing)} of {len(sent)} events never answered"
            assert sum(t.republished for t in fleet) >= len(sent)
            opened = Counter((t.device_id, eid) for t in fleet for eid in t.unlocked)
            assert all(n == 1 for n in opened.values())
    finally:
        await gateway.stop()
        proc.kill()
        proc.wait(5)
    conn = await asyncpg.connect(campus_dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS n FROM access_events"
            " WHERE device_id = ANY($1) AND event_id = ANY($2) GROUP BY 1",
            devices,
            [eid for _, eid in sent],
        )
    finally:
        await conn.close()
    assert len(rows) == len(sent) and all(r["n"] == 1 for r in rows), "one log row per event"


async def test_a_connection_closed_before_the_connack_ends_the_attempt_at_once():
    """A proxy whose broker is down accepts the TCP connection and then closes it: the
    attempt must end there, not at its timeout, or each reconnect round costs 10 s."""

    async def accept_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.read(1)  # the CONNECT has arrived
        writer.transport.abort()

    server = await asyncio.start_server(accept_and_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = MqttClient(BrokerAddress.parse(f"mqtt://127.0.0.1:{port}"), client_id="gw-proxy")
    try:
        with pytest.raises(MqttError, match="closed before the broker answered"):
            await client.connect(timeout=60)
        assert not client.is_connected
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
