"""Fixtures of the partitioned-worker tests: a campus database, the broker, the workers."""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

import pytest
from partition_fixtures import BrokerUnderTest, Workers

from firmware_sim.campus import Campus, dump_manifest, generate_campus
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def scanner_campus() -> Campus:
    """The test campus, with a separate temperature scanner at each temperature door."""
    return generate_campus(seed=7, people=400, separate_scanners=True)


@pytest.fixture(scope="module")
async def partition_dsn(database_factory, scanner_campus, tmp_path_factory) -> str:
    dsn = database_factory("partitions")
    await apply_migrations(dsn)
    folder = tmp_path_factory.mktemp("partition-campus")
    dump_manifest(scanner_campus.manifest, folder / "campus.yaml")
    conn = await connect(dsn)
    try:
        await import_file(conn, folder / "campus.yaml", tz=TZ)
    finally:
        await conn.close()
    return dsn


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    """The broker under test: the test Mosquitto, or, where a test parametrizes it
    indirectly with "nats", a three-node NATS cluster of its own (every node's URL,
    MQTT 3.1.1)."""
    if getattr(request, "param", "mosquitto") == "nats":
        cluster = request.getfixturevalue("nats_cluster")
        return BrokerUnderTest(list(cluster.urls), protocol="3.1.1")
    return BrokerUnderTest([request.getfixturevalue("mqtt_url")])


@pytest.fixture
def workers(partition_dsn, broker, prefix, tmp_path):
    ws = Workers(partition_dsn, broker, prefix, tmp_path)
    yield ws
    ws.close()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own per test, so retained states and sessions never mix."""
    return f"t{secrets.token_hex(4)}"
