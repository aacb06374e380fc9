"""A running worker's /metrics, /healthz and /readyz, scraped over HTTP after real traffic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from db_proxy import FaultyProxy
from prometheus_client.parser import text_string_to_metric_families

from devices.codecs.contract_json import EventRejected, decode_event
from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim.fleet import Fleet
from gateway.observe.status_server import StatusServer
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.telemetry import start_status_server

TOKEN = "metrics-token-0123456789"


@pytest.fixture
async def status(gateway) -> AsyncIterator[StatusServer]:
    # Store gauges refreshed at every scrape here (10 s cache in service).
    server = await start_status_server(gateway, "127.0.0.1", 0, store_ttl_s=0)
    yield server
    await server.stop()


async def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the text exposition at `url`/metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_metrics_count_what_the_doors_sent(gateway, fleet, campus, status):
    facts = campus.facts
    gate = fleet[facts.gate_device]
    before = await scrape(status.url)
    assert value(before, "campusgate_events_received_total") == 0
    assert value(before, "campusgate_decision_latency_seconds_count") == 0

    admits = [gate.swipe(card) for card in facts.resident_cards[:5]]
    outsider = gate.swipe(facts.outsider_card)
    bad = b'["card", "04A1B2C3"]'
    with pytest.raises(EventRejected) as rejected:
        decode_event(facts.gate_device, bad)
    gate.send_raw(bad)
    received = [await gate.decision(eid, timeout=10) for eid in [*admits, outsider]]
    assert [d["decision"] for d in received[:5]] == ["admit"] * 5
    denied = received[5]
    assert denied["decision"] == "deny"

    async def bad_counted() -> bool:
        return gateway.counters.rejected == 1

    await until(bad_counted)
    samples = await scrape(status.url)
    assert value(samples, "campusgate_decisions_total", verdict="admit", reason="ok") == 5
    assert (
        value(samples, "campusgate_decisions_total", verdict="deny", reason=denied["reason"]) == 1
    )
    assert value(samples, "campusgate_events_received_total") == 7
    assert value(samples, "campusgate_events_rejected_total", cause=rejected.value.cause) == 1
    # Every final decision published is one latency observation; buckets are cumulative.
    assert value(samples, "campusgate_decision_latency_seconds_count") == 6
    assert value(samples, "campusgate_decision_latency_seconds_sum") > 0
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "campusgate_decision_latency_seconds_bucket"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 6 and buckets[-1][0] == float("inf")
    assert value(samples, "campusgate_access_records_logged_total") == 6
    assert value(samples, "campusgate_journal_queue_depth") is not None
    assert value(samples, "campusgate_journal_write_lag_seconds") is not None
    assert value(samples, "campusgate_mqtt_connected") == 1
    assert value(samples, "campusgate_mqtt_connects_total") == 1
    assert value(samples, "campusgate_mqtt_reconnects_total") == 0
    assert value(samples, "campusgate_store_gauges_up") == 1
    # The outsider's alert was written with the decision, before it was sent.
    outsider_open = [
        v
        for (name, labels), v in samples.items()
        if name == "campusgate_alerts_open" and dict(labels)["kind"] == "outsider"
    ]
    assert outsider_open and sum(outsider_open) >= 1
    assert value(samples, "process_resident_memory_bytes") > 0


async def test_devices_gauge_follows_the_last_will(gateway, campus, mqtt_url, prefix, status):
    device = campus.facts.office_device
    assert gateway.devices is not None

    async def presence() -> tuple[float, float]:
        samples = await scrape(status.url)
        return (
            value(samples, "campusgate_devices", state="online"),
            value(samples, "campusgate_devices", state="offline"),
        )

    async with Fleet(mqtt_url, [device], prefix=prefix) as fleet:

        async def heard_online() -> bool:
            return gateway.devices.is_online(device) is True

        await until(heard_online)
        online, offline = await presence()
        assert online >= 1
        await fleet[device].crash()  # the broker publishes its last will: offline

        async def went_dark() -> bool:
            return await presence() == (online - 1, offline + 1)

        await until(went_dark)


async def test_mqtt_reconnects_are_counted(gateway, mqtt_url, status):
    # Another connection with the worker's client id takes its session over (MQTT
    # session takeover): the worker is disconnected and connects again.
    intruder = MqttClient(
        BrokerAddress.parse(mqtt_url), client_id=gateway.config.client_id, clean_start=False
    )
    await intruder.connect()
    await intruder.close()

    async def reconnected() -> bool:
        samples = await scrape(status.url)
        return (
            value(samples, "campusgate_mqtt_reconnects_total") == 1
            and value(samples, "campusgate_mqtt_connects_total") == 2
            and value(samples, "campusgate_mqtt_connected") == 1
        )

    await until(reconnected, timeout=20)


async def test_metrics_token_is_required_when_set(gateway):
    server = await start_status_server(gateway, "127.0.0.1", 0, token=TOKEN)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            refused = await client.get(f"{server.url}/metrics")
            wrong = await client.get(
                f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}
            )
            healthz = await client.get(f"{server.url}/healthz")
        assert refused.status_code == 401 and wrong.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert healthz.status_code == 200 and healthz.json() == {"status": "alive"}
        samples = await scrape(server.url, Authorization=f"Bearer {TOKEN}")
        assert value(samples, "campusgate_events_received_total") == 0
    finally:
        await server.stop()


async def test_readyz_and_the_journal_follow_the_database(
    campus_dsn, mqtt_url, prefix, config_factory, campus
):
    async with FaultyProxy(campus_dsn) as proxy:
        gateway = Gateway(config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"))
        server = await start_status_server(gateway, "127.0.0.1", 0)
        try:
            async with (
                httpx.AsyncClient(timeout=10) as client,
                Fleet(mqtt_url, [campus.facts.gate_device], prefix=prefix) as fleet,
            ):
                gate = fleet[campus.facts.gate_device]

                async def readyz() -> httpx.Response:
                    return await client.get(f"{server.url}/readyz")

                before = await readyz()
                assert before.status_code == 503
                assert before.json() == {
                    "ready": False,
                    "checks": {
                        "database": "not connected",
                        "broker": "not connected",
                        "roster": "not loaded",
                    },
                    # Where decisions are journaled, and how old the roster they use is.
                    "journal": "database",
                    "roster_age_s": None,
                    "spool_items": None,
                }
                await gateway.start()
                up = await readyz()
                assert up.status_code == 200, up.text
                assert up.json()["checks"] == {"database": "ok", "broker": "ok", "roster": "ok"}

                proxy.cut()

                async def down() -> bool:
                    response = await readyz()
                    return response.status_code == 503

                await until(down)
                # A decision now waits for the database: the journal's depth and lag show it.
                eid = gate.swipe(campus.facts.resident_cards[7])

                async def waiting() -> bool:
                    samples = await scrape(server.url)
                    return (
                        value(samples, "campusgate_journal_queue_depth") > 0
                        and value(samples, "campusgate_journal_write_lag_seconds") > 0.2
                    )

                await until(waiting)
                body = (await readyz()).json()
                assert body["ready"] is False
                assert body["checks"]["database"].startswith("unreachable")
                assert body["checks"]["broker"] == "ok" and body["checks"]["roster"] == "ok"
                # Liveness does not depend on the database.
                assert (await client.get(f"{server.url}/healthz")).status_code == 200

                proxy.accept()

                async def back() -> bool:
                    return (await readyz()).status_code == 200

                await until(back, timeout=20)
                assert (await gate.decision(eid, timeout=20))["decision"] == "admit"

                async def drained() -> bool:
                    samples = await scrape(server.url)
                    return (
                        value(samples, "campusgate_journal_queue_depth") == 0
                        and value(samples, "campusgate_journal_write_lag_seconds") == 0
                        and value(samples, "campusgate_journal_stalls_total") >= 1
                    )

                await until(drained)
        finally:
            await server.stop()
            await gateway.stop()


async def test_status_server_answers_bad_requests_plainly(gateway):
    server = await start_status_server(gateway, "127.0.0.1", 0)
    try:

        async def raw(request: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request)
            await writer.drain()
            reply = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return reply

        assert (await raw(b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405 ")
        missing = await raw(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert missing.startswith(b"HTTP/1.1 404 ")
        assert json.loads(missing.split(b"\r\n\r\n", 1)[1])["paths"] == [
            "/healthz",
            "/metrics",
            "/readyz",
        ]
        assert (await raw(b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"x" * 20_000 + b"\r\n\r\n"
        assert (await raw(huge)).startswith(b"HTTP/1.1 400 ")
        head = await raw(b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        # Still serving after all that.
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{server.url}/healthz")).status_code == 200
    finally:
        await server.stop()
