"""Two `campusgate worker` processes share the device topics; each event is decided once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import asyncpg

from firmware_sim.fleet import Fleet


def spawn_worker(dsn: str, mqtt_url: str, prefix: str, worker_id: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_WORKER_GROUP": f"group-{prefix}",
        "CAMPUSGATE_LOG_LEVEL": "INFO",
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--worker-id", worker_id],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def test_two_workers_split_the_load(campus_dsn, mqtt_url, prefix, campus, tmp_path):
    facts = campus.facts
    devices = [facts.gate_device, facts.gate_exit_device, facts.dorm_exit_device]
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [
        spawn_worker(campus_dsn, mqtt_url, prefix, f"w1-{prefix}", logs[0]),
        spawn_worker(campus_dsn, mqtt_url, prefix, f"w2-{prefix}", logs[1]),
    ]
    try:
        async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
            # Until both workers have subscribed, an event may find nobody: wait for answers.
            for log in logs:
                for _ in range(300):
                    if "up: broker" in log.read_text(errors="replace"):
                        break
                    await asyncio.sleep(0.1)
            sent = []
            for k in range(200):
                device = devices[k % len(devices)]
                sent.append(
                    (device, fleet[device].swipe(facts.resident_cards[k % 10], direction="out"))
                )
            for device, eid in sent:
                decision = await fleet[device].decision(eid, timeout=15)
                assert decision["decision"] == "admit", decision
            assert fleet.problems() == []
            # Both workers sign with the one key under the shared data dir: every terminal
            # pinned it from the retained topic and verified every decision, whichever
            # worker sent it (their seq counters interleave).
            kids = {t.verifier.kid for t in fleet if t.verifier is not None}
            assert len(kids) == 1 and all(t.verifier is not None for t in fleet)
            assert all(t.refused_commands == {} for t in fleet)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(20)

    decided = []
    for log in logs:
        found = re.findall(
            r"stopped: \{'received': \d+, 'decided': (\d+)", log.read_text(errors="replace")
        )
        assert found, log.read_text(errors="replace")[-2000:]
        decided.append(int(found[-1]))
    assert sum(decided) == len(sent)
    assert all(n > 0 for n in decided), (
        f"one worker got everything: {decided}\n"
        + logs[0].read_text()[-3000:]
        + logs[1].read_text()[-3000:]
    )

    conn = await asyncpg.connect(campus_dsn)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE event_id = ANY($1) AND type = 'card'",
            [eid for _, eid in sent],
        )
    finally:
        await conn.close()
    assert count == len(sent)
