"""Partition leases while sessions open slowly (gateway/pipeline/ownership.py).

A partitioned worker on a real PostgreSQL and the test Mosquitto. On a busy NATS cluster
a partition session's subscriptions are confirmed seconds late (each is a replicated
JetStream consumer), longer than a lease; that broker cannot be made slow on purpose, so
here each session's opening waits three leases before it connects.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest

from devices.transports.mqtt import BrokerAddress
from gateway.pipeline.door_worker import Gateway, GatewayConfig, Partitioning
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.partition_sessions import PartitionedMqtt
from gateway.store.db import connect

LEASE_S = 2.0
OPENING_S = 3 * LEASE_S


async def lapsed(dsn: str, worker: str) -> tuple[int, bool]:
    """(this worker's leases expired, whether its registration expired)."""
    conn = await connect(dsn)
    try:
        leases = await conn.fetchval(
            "SELECT count(*) FROM partition_leases WHERE worker = $1 AND expires_at < now()",
            worker,
        )
        registered = await conn.fetchval(
            "SELECT expires_at >= now() FROM gateway_workers WHERE worker = $1", worker
        )
    finally:
        await conn.close()
    return int(leases), registered is False


async def test_leases_stay_renewed_while_partition_sessions_open_slowly(
    fresh_db: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opening = PartitionedMqtt.open_partition

    async def slow_open(self: PartitionedMqtt, partition: int, devices: Sequence[str]) -> None:
        await asyncio.sleep(OPENING_S)  # the broker confirming the subscriptions late
        await opening(self, partition, devices)

    monkeypatch.setattr(PartitionedMqtt, "open_partition", slow_open)
    prefix = f"own{secrets.token_hex(4)}"
    worker = f"w-{prefix}"
    gateway = Gateway(
        GatewayConfig(
            database_url=fresh_db,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=ZoneInfo("UTC"), fever_threshold_c=37.3, temperature_window_s=2.0),
            client_id=worker,
            partitioning=Partitioning(lease_s=LEASE_S, client_prefix=f"{prefix}-p"),
        )
    )
    started = time.perf_counter()
    starting = asyncio.create_task(gateway.start())
    worst: tuple[int, bool] = (0, False)
    checks = 0
    try:
        while not starting.done():
            seen = await lapsed(fresh_db, worker)
            worst = (max(worst[0], seen[0]), worst[1] or seen[1])
            checks += 1
            await asyncio.sleep(0.1)
        await starting
        took = time.perf_counter() - started
        assert gateway.ownership is not None
        assert gateway.ownership.owned == list(range(64))
        assert took >= OPENING_S
        # Every lease renewed all along, though the sessions took three leases to open.
        assert worst == (0, False), worst
        assert gateway.ownership.losses == 0
    finally:
        if not starting.done():
            starting.cancel()
        await gateway.stop()
    print(
        f"\n64 partitions opened in {took:.1f} s (lease {LEASE_S} s): {checks} checks, none lapsed"
    )
