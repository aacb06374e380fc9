"""A gateway killed mid-stream and restarted loses no event and decides none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from firmware_sim.fleet import Fleet

EVENTS = 600
RATE = 400.0


def spawn_gateway(
    dsn: str, mqtt_url: str, prefix: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_LOG_LEVEL": "WARNING",
        "CAMPUSGATE_API_PORT": "0",  # any free port: the console is not under test here
        "CAMPUSGATE_METRICS_PORT": "0",  # no metrics server: tests run side by side
        **(extra_env or {}),
    }
    with log.open("ab") as sink:  # a file, not a pipe nobody reads
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def wait_ready(fleet: Fleet, device: str, card: str, attempts: int = 60) -> None:
    """Swipe until the gateway answers: events sent before it first subscribed are not queued."""
    terminal = fleet[device]
    for _ in range(attempts):
        eid = terminal.swipe(card, direction="out")
        try:
            await terminal.decision(eid, timeout=0.5)
            return
        except TimeoutError:
            continue
    raise TimeoutError("the gateway did not answer within 30 s")


async def test_kill_and_restart_mid_stream(campus_dsn, mqtt_url, prefix, campus, tmp_path):
    log = tmp_path / "gateway.log"
    facts = campus.facts
    devices = [facts.gate_device, facts.office_device, facts.lab_device, facts.dorm_exit_device]
    cards = facts.resident_cards
    proc = spawn_gateway(campus_dsn, mqtt_url, prefix, log)
    sent: list[tuple[str, str]] = []
    try:
        async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
            await wait_ready(fleet, facts.gate_device, cards[0])
            loop = asyncio.get_running_loop()
            started = loop.time()
            killed = restarted = False
            for k in range(EVENTS):
                due = started + k / RATE
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                device = devices[k % len(devices)]
                sent.append((device, fleet[device].swipe(cards[k % len(cards)], direction="out")))
                if not killed and k == EVENTS // 3:
                    proc.send_signal(signal.SIGKILL)  # no chance to drain or say goodbye
                    proc.wait(10)
                    killed = True
                if killed and not restarted and k == EVENTS // 2:
                    proc = spawn_gateway(campus_dsn, mqtt_url, prefix, log)
                    restarted = True
            for device, eid in sent:
                await fleet[device].decision(eid, timeout=60)
            finals = {(device, eid): fleet[device].finals(eid) for device, eid in sent}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    for key, answers in finals.items():
        assert answers, f"no decision for {key}"
        assert all(a == answers[0] for a in answers), f"{key} was answered differently: {answers}"

    conn = await asyncpg.connect(campus_dsn)
    try:
        rows = await conn.fetch(
            "SELECT device_id, event_id, count(*) AS n FROM access_events "
            "WHERE device_id = ANY($1) AND type = 'card' AND event_id = ANY($2) GROUP BY 1, 2",
            devices,
            [eid for _, eid in sent],
        )
    finally:
        await conn.close()
    logged = {(r["device_id"], r["event_id"]): r["n"] for r in rows}
    assert set(logged) == set(finals), "some events are missing from the access log"
    assert max(logged.values()) == 1, "an event was decided twice"
