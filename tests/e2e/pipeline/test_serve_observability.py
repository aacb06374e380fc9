"""`campusgate serve` (gateway and API in one process): both /metrics scraped, JSON stderr."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families
from test_workers import free_port

from firmware_sim.fleet import Fleet


def samples_of(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_serve_exposes_worker_and_api_metrics_and_logs_json(
    campus_dsn, mqtt_url, prefix, campus, tmp_path
):
    api_port, metrics_port = free_port(), free_port()
    log = tmp_path / "serve.jsonl"
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": campus_dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_API_PORT": str(api_port),
        "CAMPUSGATE_METRICS_PORT": str(metrics_port),
        "CAMPUSGATE_LOG_FORMAT": "json",
        "CAMPUSGATE_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as sink:  # stderr only: stdout is the command's own output
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, then polled without blocking
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    worker, api = f"http://127.0.0.1:{metrics_port}", f"http://127.0.0.1:{api_port}"
    facts = campus.facts
    try:
        for _ in range(1200):
            if b"running; Ctrl-C" in log.read_bytes() or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert b"running; Ctrl-C" in log.read_bytes(), log.read_text(errors="replace")[-3000:]
        async with (
            Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet,
            httpx.AsyncClient(timeout=10) as client,
        ):
            terminal = fleet[facts.gate_device]
            for _ in range(60):  # events sent before the gateway subscribed are not queued
                eid = terminal.swipe(facts.resident_cards[3], direction="in")
                try:
                    decision = await terminal.decision(eid, timeout=0.5)
                    break
                except TimeoutError:
                    continue
            assert decision["decision"] == "admit"
            for base in (worker, api):
                assert (await client.get(f"{base}/healthz")).status_code == 200
                ready = await client.get(f"{base}/readyz")
                assert ready.status_code == 200, ready.text
            worker_samples = samples_of((await client.get(f"{worker}/metrics")).text)
            api_samples = samples_of((await client.get(f"{api}/metrics")).text)
        admitted = worker_samples[("campusgate_decisions_total", "reason=ok,verdict=admit")]
        assert admitted >= 1
        assert worker_samples[("campusgate_decision_latency_seconds_count", "")] >= admitted
        assert worker_samples[("campusgate_mqtt_connected", "")] == 1
        # The API answers for the store, not for the doors.
        assert api_samples[("campusgate_store_gauges_up", "")] == 1
        assert ("campusgate_devices", "state=online") in api_samples
        assert not any(name == "campusgate_decisions_total" for name, _ in api_samples)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every stderr line is one JSON object
    messages = [e["message"] for e in entries]
    assert any(m.startswith("worker metrics on ") for m in messages)
    assert any(m.startswith("console and API on ") for m in messages)
    assert any(
        e["logger"] == "gateway.pipeline.door_worker" and "stopped" in e["message"] for e in entries
    )
