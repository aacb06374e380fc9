"""The alert relay: alerts stored pending publication reach P/alerts/{kind} once, from
whichever of several workers claims them, through a real PostgreSQL and Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim.fleet import AlertWatch
from gateway.domain.alerts import SEVERITY, Alert, AlertKind
from gateway.pipeline.alert_relay import BATCH, AlertRelay
from gateway.pipeline.publisher import Publisher
from gateway.pipeline.topics import Topics
from gateway.store.alerts import insert_alerts
from gateway.store.db import create_pool


def overstay(n: int, **detail: object) -> Alert:
    return Alert(
        id=uuid.uuid4().hex,
        kind=AlertKind.VISITOR_OVERSTAY,
        ts=datetime.now(UTC) - timedelta(seconds=n),
        severity=SEVERITY[AlertKind.VISITOR_OVERSTAY],
        person=f"visitor-pass-{n}",
        detail={"pass_id": n, **detail},
    )


@contextlib.asynccontextmanager
async def relay_worker(dsn: str, mqtt_url: str, prefix: str) -> AsyncIterator[AlertRelay]:
    """A relay with its own pool and broker client, as one gateway worker has."""
    client = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"relay-{uuid.uuid4().hex[:8]}")
    await client.connect(10)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        yield AlertRelay(pool, Publisher(client, Topics(prefix)), poll_s=0.05)
    finally:
        await pool.close()
        await client.close()


@pytest.fixture
def prefix() -> str:
    return f"r{secrets.token_hex(4)}"


async def test_pending_alerts_are_published_once_across_workers(fresh_db, conn, mqtt_url, prefix):
    pending = [overstay(n) for n in range(BATCH + 20)]  # more than one claim's batch
    await insert_alerts(conn, pending, publish_pending=True)
    own = overstay(999)  # stored by a gateway that published it itself
    await insert_alerts(conn, [own])
    async with (
        AlertWatch(mqtt_url, prefix=prefix) as watch,
        relay_worker(fresh_db, mqtt_url, prefix) as first,
        relay_worker(fresh_db, mqtt_url, prefix) as second,
    ):
        counts = await asyncio.gather(first.relay(), second.relay(), first.relay())
        assert sum(counts) == len(pending), counts
        print(f"\nrelayed by worker: {counts}")
        while len(watch.matching("visitor_overstay")) < len(pending):
            await watch.wait_for("visitor_overstay", since=watch.mark(), timeout=5)
        first.start()  # polling: nothing is pending any more, nothing is sent again
        await asyncio.sleep(0.3)
        await first.stop()
    got = watch.matching("visitor_overstay")
    assert sorted(a["id"] for a in got) == sorted(a.id for a in pending)
    assert own.id not in {a["id"] for a in got}
    pending_left = await conn.fetchval("SELECT count(*) FROM alerts WHERE publish_pending")
    assert pending_left == 0


async def test_a_relayed_alert_is_the_wire_form_without_health_details(
    fresh_db, conn, mqtt_url, prefix
):
    alert = overstay(7, zones=["office"], celsius=38.4)
    await insert_alerts(conn, [alert], publish_pending=True)
    async with (
        AlertWatch(mqtt_url, prefix=prefix) as watch,
        relay_worker(fresh_db, mqtt_url, prefix) as relay,
    ):
        relay.start()
        got = await watch.wait_for("visitor_overstay", timeout=10)
        await relay.stop()
    assert got is not None
    assert got == {
        "id": alert.id,
        "kind": "visitor_overstay",
        "severity": "medium",
        "ts": alert.ts.isoformat(),
        "door": None,
        "zone": None,
        "device": None,
        "person": "visitor-pass-7",
        "status": "open",
        "detail": {"pass_id": 7, "zones": ["office"]},
    }
