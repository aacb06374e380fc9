"""Two `campusgate worker` processes share the campus by partition; each event is decided once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from firmware_sim.fleet import Fleet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_worker(
    dsn: str, mqtt_url: str, prefix: str, worker_id: str, log, metrics_port: int
) -> subprocess.Popen:
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        # Partition sessions of this test only: the broker is shared by the whole session.
        "CAMPUSGATE_PARTITION_CLIENT_PREFIX": f"{prefix}-p",
        "CAMPUSGATE_LOG_LEVEL": "INFO",
        # Workers on one host need a metrics port each.
        "CAMPUSGATE_METRICS_PORT": str(metrics_port),
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
    # Every terminal: doors are spread over both workers' partitions (all of them on one
    # worker's would be a 1 in 2**22 chance).
    devices = [
        d for d in facts.mqtt_devices if facts.device_doors[d] not in facts.temperature_doors
    ]
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    ports = [free_port(), free_port()]
    workers = [
        spawn_worker(campus_dsn, mqtt_url, prefix, f"w{n + 1}-{prefix}", logs[n], ports[n])
        for n in range(2)
    ]
    scraped: list[dict] = []
    try:
        async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
            # Until both workers have subscribed, an event may find nobody: wait for answers.
            for log in logs:
                for _ in range(300):
                    if "up: broker" in log.read_text(errors="replace"):
                        break
                    await asyncio.sleep(0.1)
            await balanced(campus_dsn, {f"w{n + 1}-{prefix}" for n in range(2)})
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
            for n, port in enumerate(ports):  # as Prometheus would, one target per worker
                samples = await scrape(f"http://127.0.0.1:{port}")
                assert (
                    samples[
                        (
                            "campusgate_worker_info",
                            f"client_id=w{n + 1}-{prefix},topic_prefix={prefix}",
                        )
                    ]
                    == 1
                )
                scraped.append(samples)
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
    admits = [s.get(("campusgate_decisions_total", "reason=ok,verdict=admit"), 0) for s in scraped]
    assert admits == decided  # each worker's /metrics counts what it decided
    latencies = [s[("campusgate_decision_latency_seconds_count", "")] for s in scraped]
    assert latencies == decided
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


async def balanced(dsn: str, workers: set[str], timeout: float = 60) -> None:
    """Until the workers split the 64 partitions (issue 14) between them, 32 each."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(int(timeout * 10)):
            rows = await conn.fetch(
                "SELECT worker, count(*) AS n FROM partition_leases"
                " WHERE expires_at >= now() GROUP BY worker"
            )
            if {r["worker"]: r["n"] for r in rows} == dict.fromkeys(workers, 32):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise TimeoutError(f"partitions not split between {workers}")


async def scrape(url: str) -> dict[tuple[str, str], float]:
    """(sample name, "k=v,..." labels sorted) -> value, from `url`/metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/metrics")
        ready = await client.get(f"{url}/readyz")
    assert response.status_code == 200, response.text
    assert ready.status_code == 200, ready.text
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
