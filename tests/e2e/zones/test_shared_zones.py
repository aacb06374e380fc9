"""State that spans doors, shared by several workers through PostgreSQL (issue #14, point 2).

Three partitioned gateways in this process on one database and one broker: the doors
of one zone hash to partitions that different workers own, so one zone's entries are
decided by different workers at the same time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from campus_fixtures import imported_campus
from db_proxy import FaultyProxy

from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import AlertWatch, Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig, Partitioning
from gateway.pipeline.doors import DoorPolicy
from gateway.store.db import connect
from gateway.store.levels import write_level

TZ = ZoneInfo("Asia/Shanghai")
DOORS = 12
PEOPLE = 14


def _campus() -> str:
    doors = "\n".join(
        f"  - {{id: {z}-d{n}, zone: {z}}}" for z in ("full", "busy") for n in range(DOORS)
    )
    devices = "\n".join(
        f"  - {{id: {z}-t{n}, door: {z}-d{n}, kind: terminal}}"
        for z in ("full", "busy")
        for n in range(DOORS)
    )
    people = "\n".join(
        f'  - {{id: P{n}, kind: student, name: Person {n}, cards: ["0D{n:06d}"]}}'
        for n in range(PEOPLE)
    )
    return f"""
zones:
  - {{id: full, name: Enforced, kind: other, capacity: 6}}
  - {{id: busy, name: Alerting, kind: other, capacity: 6, capacity_mode: alert,
     gathering_threshold: 5, gathering_minutes: 0}}
doors:
{doors}
devices:
{devices}
people:
{people}
grants:
  - {{subject: {{kind: student}}, zone: full}}
  - {{subject: {{kind: student}}, zone: busy}}
"""


def card(n: int) -> str:
    return f"0D{n:06d}"


@pytest.fixture
async def shared_dsn(new_database, tmp_path: Path) -> str:
    return await imported_campus(new_database, "shared", _campus(), tmp_path)


@pytest.fixture
def prefix() -> str:
    return f"s{secrets.token_hex(4)}"


Workers = Callable[..., Awaitable[list[Gateway]]]


@pytest.fixture(params=["mosquitto"])
def broker_url(request, mqtt_url) -> str:
    """The broker of the test: the test Mosquitto, or (parametrized "nats") a three-node
    NATS cluster, every node's URL, MQTT 3.1.1."""
    if request.param == "nats":
        return request.getfixturevalue("nats_cluster").url + "?protocol=3.1.1"
    return str(mqtt_url)


@pytest.fixture
async def workers(broker_url, prefix, tmp_path) -> AsyncIterator[Workers]:
    started: list[Gateway] = []

    async def start(dsn: str, n: int = 3, *, spool: bool = False) -> list[Gateway]:
        for k in range(n):
            gw = Gateway(
                GatewayConfig(
                    database_url=dsn,
                    broker=BrokerAddress.parse(broker_url),
                    topic_prefix=prefix,
                    policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
                    client_id=f"w{k}-{prefix}",
                    # Partitioned workers: the zone's doors hash to different owners.
                    partitioning=Partitioning(lease_s=3.0, client_prefix=f"{prefix}-p"),
                    spool_path=tmp_path / f"spool-w{k}" if spool else None,
                )
            )
            await gw.start()
            started.append(gw)
        await _balanced(dsn, n)
        return started

    yield start
    for gw in started:
        await gw.stop()


async def _balanced(dsn: str, n: int, timeout: float = 60) -> None:
    """Until `n` workers hold every partition between them (the doors are spread)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = await connect(dsn)
        try:
            held, owners = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT worker) FROM partition_leases"
                " WHERE expires_at > now()"
            )
        finally:
            await conn.close()
        if held == 64 and owners == n:
            return
        assert time.monotonic() < deadline, f"{held} partitions held by {owners} workers"
        await asyncio.sleep(0.2)


def devices(zone: str) -> list[str]:
    return [f"{zone}-t{n}" for n in range(DOORS)]


async def swipe_all(fleet: Fleet, zone: str, people: range, direction: str = "in") -> list[str]:
    """Everyone at once, each at a door of their own; the outcomes in order."""
    sent = [
        (
            fleet[f"{zone}-t{k % DOORS}"],
            fleet[f"{zone}-t{k % DOORS}"].swipe(card(p), direction=direction),
        )
        for k, p in enumerate(people)
    ]
    answers = await asyncio.gather(*(t.decision(eid, timeout=10) for t, eid in sent))
    return [f"{a['decision']}/{a['reason']}" for a in answers]


async def open_alerts(dsn: str, kind: str, zone: str) -> int:
    conn = await connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM alerts WHERE kind = $1 AND zone = $2 "
                "AND status <> 'resolved'",
                kind,
                zone,
            )
        )
    finally:
        await conn.close()


async def shared_count(dsn: str, zone: str, expected: int, timeout: float = 5.0) -> bool:
    """Whether the zone's shared count reaches `expected` within `timeout`."""
    conn = await connect(dsn)
    try:
        for _ in range(int(timeout / 0.05)):
            inside = await conn.fetchval(
                "SELECT inside FROM zone_occupancy WHERE zone_id = $1", zone
            )
            if inside == expected:
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await conn.close()


def decided_by(gateways: list[Gateway]) -> list[int]:
    return [gw.counters.decided for gw in gateways]


@pytest.mark.parametrize("broker_url", ["mosquitto", "nats"], indirect=True)
async def test_capacity_holds_across_workers(shared_dsn, workers, broker_url, prefix):
    gateways = await workers(shared_dsn)
    async with (
        Fleet(broker_url, devices("full"), prefix=prefix) as fleet,
        AlertWatch(broker_url, prefix=prefix) as watch,
    ):
        await asyncio.sleep(0.5)  # the watch's subscription settles
        outcomes = await swipe_all(fleet, "full", range(DOORS))
        assert Counter(outcomes) == {"admit/ok": 6, "deny/zone_full": 6}, outcomes
        assert sum(1 for n in decided_by(gateways) if n) >= 2, "one worker took every door"
        assert fleet.problems() == []
        await asyncio.sleep(0.5)
        # One zone_full alert for the crossing, stored and published once.
        assert await open_alerts(shared_dsn, "zone_full", "full") == 1
        published = [a for a in watch.matching("zone_full") if a.get("status") == "open"]
        assert len(published) == 1, published
        assert sum(gw.counters.alerts_deduplicated for gw in gateways) == 5

        admitted = [p for p, o in zip(range(DOORS), outcomes, strict=True) if o == "admit/ok"]
        refused = [p for p, o in zip(range(DOORS), outcomes, strict=True) if o != "admit/ok"]
        # Two leave (through whichever worker): two of the refused get in, no third.
        for p in admitted[:2]:
            terminal = fleet[f"full-t{p}"]
            answer = await terminal.decision(terminal.swipe(card(p), direction="out"), timeout=10)
            assert answer["decision"] == "admit"
        # Exits are written behind their decisions, by whichever worker took them.
        assert await shared_count(shared_dsn, "full", 4)
        retry = []
        for p in refused[:3]:
            terminal = fleet[f"full-t{p}"]
            answer = await terminal.decision(terminal.swipe(card(p), direction="in"), timeout=10)
            retry.append(f"{answer['decision']}/{answer['reason']}")
        assert retry == ["admit/ok", "admit/ok", "deny/zone_full"]

    conn = await connect(shared_dsn)
    try:
        inside = await conn.fetchval("SELECT inside FROM zone_occupancy WHERE zone_id = 'full'")
        logged = await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE zone_id = 'full' AND type = 'card'"
        )
    finally:
        await conn.close()
    assert inside == 6
    assert logged == DOORS + 2 + 3  # every card event logged once


async def test_a_double_swipe_at_a_full_zone_keeps_the_place(shared_dsn, workers, prefix, mqtt_url):
    """Someone inside swipes in again at another door (likely another worker's) of the
    full zone: admitted (they hold their place), and the count stays; the next person is
    refused."""
    await workers(shared_dsn)
    async with Fleet(mqtt_url, devices("full"), prefix=prefix) as fleet:
        assert await swipe_all(fleet, "full", range(6)) == ["admit/ok"] * 6
        again = []
        for p, door in ((0, 7), (1, 11), (2, 9)):
            terminal = fleet[f"full-t{door}"]
            answer = await terminal.decision(terminal.swipe(card(p), direction="in"), timeout=10)
            again.append(f"{answer['decision']}/{answer['reason']}")
        assert again == ["admit/ok"] * 3
        assert await shared_count(shared_dsn, "full", 6)
        terminal = fleet["full-t6"]
        answer = await terminal.decision(terminal.swipe(card(6), direction="in"), timeout=10)
        assert f"{answer['decision']}/{answer['reason']}" == "deny/zone_full"
    assert await shared_count(shared_dsn, "full", 6)


async def test_alert_mode_and_gathering_alert_once(shared_dsn, workers, mqtt_url, prefix):
    gateways = await workers(shared_dsn)
    async with (
        Fleet(mqtt_url, devices("busy"), prefix=prefix) as fleet,
        AlertWatch(mqtt_url, prefix=prefix) as watch,
    ):
        await asyncio.sleep(0.5)  # the watch's subscription settles
        outcomes = await swipe_all(fleet, "busy", range(DOORS))
        assert outcomes == ["admit/ok"] * DOORS  # capacity mode alert: all admitted
        assert sum(1 for n in decided_by(gateways) if n) >= 2, "one worker took every door"
        gathering = await watch.wait_for("gathering", timeout=10)
        assert gathering is not None and gathering["zone"] == "busy"
        await asyncio.sleep(3)  # every worker's watch has looked several times by now
        opened = [a for a in watch.alerts if a.get("status") == "open"]
        assert Counter(a["kind"] for a in opened) == {"zone_full": 1, "gathering": 1}, opened
        full = next(a for a in opened if a["kind"] == "zone_full")
        assert (full["detail"]["occupancy"], full["detail"]["capacity"]) == (6, 6)
    assert await open_alerts(shared_dsn, "zone_full", "busy") == 1
    assert await open_alerts(shared_dsn, "gathering", "busy") == 1


async def test_a_device_drop_raises_one_device_offline_and_its_return_resolves_it(
    shared_dsn, workers, mqtt_url, prefix
):
    """Only the owner of the device's partition hears its state: one alert, by it. When
    that worker is gone and the device is back, the alert is resolved all the same (the
    next owner adopts it, or the steward's sweep finds the device online)."""
    gateways = await workers(shared_dsn, 2)
    async with Fleet(mqtt_url, devices("full")[:1], prefix=prefix) as fleet:
        await asyncio.sleep(0.5)
        await fleet["full-t0"].crash()  # the broker publishes its will
        conn = await connect(shared_dsn)
        try:
            query = "SELECT id FROM alerts WHERE kind = 'device_offline' AND device = 'full-t0'"
            for _ in range(200):
                if await conn.fetch(query):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)  # a second alert, if any, would be stored by now
            stored = await conn.fetch(query)
            assert len(stored) == 1
            heard = [gw for gw in gateways if gw.devices and "full-t0" in gw.devices._offline]
            assert len(heard) == 1, "only the device's owner hears its state"
            raiser = heard[0]
            gateways.remove(raiser)
            await raiser.stop()
            await fleet["full-t0"].start()
            survivor = gateways[0]
            assert survivor.gathering is not None
            status = None
            for k in range(300):
                status = await conn.fetchval(
                    "SELECT status FROM alerts WHERE id = $1", stored[0][0]
                )
                if status == "resolved":
                    break
                if k % 20 == 19:  # the steward's periodic sweep, sooner than its 30 s
                    await survivor.gathering.reconcile(datetime.now(UTC))
                await asyncio.sleep(0.1)
            assert status == "resolved"
        finally:
            await conn.close()


async def test_doors_decide_through_a_database_outage(
    new_database,
    workers,
    mqtt_url,
    prefix,
    tmp_path,
):
    dsn = await imported_campus(new_database, "sharedout", _campus(), tmp_path)
    async with FaultyProxy(dsn) as proxy:
        gateways = await workers(proxy.dsn, 2, spool=True)
        async with Fleet(mqtt_url, devices("full"), prefix=prefix) as fleet:
            first = await swipe_all(fleet, "full", range(4))
            assert first == ["admit/ok"] * 4
            await asyncio.sleep(1.5)  # every worker has seen the shared count of 4
            proxy.cut()
            # Each worker alone: it counts from 4 and lets at most 2 more in.
            during = await swipe_all(fleet, "full", range(4, DOORS))
            admitted = during.count("admit/ok")
            assert set(during) <= {"admit/ok", "deny/zone_full"}, during
            assert 2 <= admitted <= 2 * len(gateways), during
            assert all(gw.shared is not None and not gw.shared.connected for gw in gateways)
            proxy.accept()
            # Back: the outage's entries are written into the shared count; the zone is
            # full (or over), so the next entry is refused.
            for _ in range(100):
                if all(gw.shared is not None and gw.shared.connected for gw in gateways):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)
            terminal = fleet["full-t0"]
            answer = await terminal.decision(
                terminal.swipe(card(PEOPLE - 1), direction="in"), timeout=10
            )
            assert answer["reason"] == "zone_full"
    conn = await connect(dsn)
    try:
        inside = await conn.fetchval("SELECT inside FROM zone_occupancy WHERE zone_id = 'full'")
    finally:
        await conn.close()
    assert inside == 4 + admitted


async def test_a_level_change_reaches_every_worker(shared_dsn, workers, mqtt_url, prefix):
    """Each worker listens for level changes (NOTIFY): a scaled capacity holds at once."""
    gateways = await workers(shared_dsn)
    conn = await connect(shared_dsn)
    try:
        await write_level(conn, "full", None, "lockdown", by="test", note="drill")
    finally:
        await conn.close()
    started = asyncio.get_running_loop().time()
    while any(gw.roster.index.zone_rules("full").capacity != 3 for gw in gateways if gw.roster):
        assert asyncio.get_running_loop().time() - started < 5, "a worker kept the old level"
        await asyncio.sleep(0.02)
    async with Fleet(mqtt_url, devices("full"), prefix=prefix) as fleet:
        # Lockdown: capacities halved (6 -> 3), a temperature at every door.
        sent = [
            (fleet[f"full-t{p}"], fleet[f"full-t{p}"].swipe(card(p), direction="in", celsius=36.5))
            for p in range(DOORS)
        ]
        answers = await asyncio.gather(*(t.decision(eid, timeout=10) for t, eid in sent))
    outcomes = Counter(f"{a['decision']}/{a['reason']}" for a in answers)
    assert outcomes == {"admit/ok": 3, "deny/zone_full": DOORS - 3}, outcomes
