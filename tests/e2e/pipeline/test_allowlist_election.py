"""Two gateways on one campus: only the one holding the PostgreSQL lock publishes the
allowlists, so a terminal's retained list and delta always come from one publisher; when
it goes, the other takes over (issue 13 review, point 2)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.offline import OfflineTerminal
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.allowlists import AllowlistConfig
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.signing import PublicKeyInfo
from gateway.store.db import connect
from gateway.store.health import set_health

TZ = ZoneInfo("Asia/Shanghai")


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def set_status(dsn: str, card_uid: str, status: HealthStatus) -> None:
    conn = await connect(dsn)
    try:
        person = await conn.fetchval(
            "SELECT person_id FROM cards WHERE upper(uid) = upper($1)", card_uid
        )
        record = HealthRecord(person, status, datetime.now(UTC), reason="election test")
        await set_health(conn, record, changed_by="test")
    finally:
        await conn.close()


def leaders(gateways: list[Gateway]) -> list[Gateway]:
    return [g for g in gateways if g.offline is not None and g.offline.allowlists is not None]


def two_gateways(config_factory, campus_dsn, mqtt_url, prefix, key) -> list[Gateway]:
    return [
        Gateway(
            dataclasses.replace(
                config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw{n}-{prefix}"),
                signing_key=key,
                allowlists=AllowlistConfig(tz=TZ, fever_threshold_c=37.3, days=2),
            )
        )
        for n in range(2)
    ]


async def test_one_gateway_publishes_and_the_other_takes_over_when_it_stops(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    key = Ed25519PrivateKey.generate()
    facts = campus.facts
    card = facts.resident_cards[-4]
    gateways = two_gateways(config_factory, campus_dsn, mqtt_url, prefix, key)
    for gateway in gateways:
        await gateway.start()
    gate = OfflineTerminal(
        mqtt_url,
        facts.gate_device,
        prefix=prefix,
        command_key=PublicKeyInfo.of(key).public_key,
        state_dir=tmp_path / "gate",
    )
    try:
        await gate.start()
        await until(lambda: len(leaders(gateways)) == 1 and gate.holder.current is not None)
        leader = leaders(gateways)[0]
        standby = next(g for g in gateways if g is not leader)
        await asyncio.sleep(2.5)  # a few election rounds: the standby keeps standing by
        assert leaders(gateways) == [leader]
        assert standby.offline is not None and standby.offline.election is not None
        assert standby.offline.election.terms == 0
        first = gate.holder.current
        assert first is not None and first.entry(card) is not None

        # A change goes out as a delta on the leader's own list: the terminal takes it.
        await set_status(campus_dsn, card, HealthStatus.CLOSE_CONTACT)
        await until(lambda: gate.holder.current.entry(card) is None)
        assert gate.holder.current.delta_version is not None
        assert gate.holder.current.version == first.version

        await leader.stop()
        await until(lambda: leaders(gateways) == [standby])
        # The new leader's first full list replaces the old one and clears its delta.
        await until(lambda: gate.holder.current.version > first.version)
        assert gate.holder.current.delta_version is None
        assert gate.holder.current.entry(card) is None
        await set_status(campus_dsn, card, HealthStatus.CLEAR)
        await until(lambda: gate.holder.current.entry(card) is not None)
        assert gate.holder.current.delta_version is not None
        assert gate.holder.refused == {}
    finally:
        await gate.stop()
        for gateway in gateways:
            await gateway.stop()
        await set_status(campus_dsn, card, HealthStatus.CLEAR)


async def test_a_leader_whose_session_dies_stops_publishing_and_one_leads_again(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    key = Ed25519PrivateKey.generate()
    gateways = two_gateways(config_factory, campus_dsn, mqtt_url, prefix, key)
    for gateway in gateways:
        await gateway.start()
    try:
        await until(lambda: len(leaders(gateways)) == 1)
        leader = leaders(gateways)[0]
        assert leader.offline is not None and leader.offline.election is not None
        election = leader.offline.election
        first_term = election.publisher
        pid = election._conn.get_server_pid()  # the session to cut
        # As if the leader's host vanished: PostgreSQL ends its session, and the lock.
        admin = await asyncpg.connect(campus_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        # The leader sends nothing more at once (its session is gone), notices and stops
        # its publisher; one gateway leads again (either).
        await until(lambda: not election.holds(), 5)
        await until(lambda: election.publisher is not first_term)
        await until(lambda: len(leaders(gateways)) == 1)
        assert sum(g.offline.election.terms for g in gateways) == 2  # type: ignore[union-attr]
    finally:
        for gateway in gateways:
            await gateway.stop()
