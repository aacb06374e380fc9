"""End to end through simulated terminals, a running gateway, PostgreSQL and the API:

- free egress: a person put under a health hold while inside leaves, is admitted and
  logged as a passage, so the trace ends their stay there and the muster list drops
  them; the guards get an `isolation_breach` naming the direction and the caretaker;
- event time: passages queued at the broker while the gateway was down keep the time
  they happened, so two people who overlapped during the outage are traced.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import CampusFacts, SimPerson, dump_manifest, generate_campus
from firmware_sim.fleet import Fleet
from firmware_sim.terminal import SimTerminal
from gateway.domain.alerts import AlertKind
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store import alerts as alert_store
from gateway.store.db import connect
from gateway.store.health import set_health
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")
QUERY = {"days": 1, "generations": 1, "min_overlap_s": 1}


class World:
    def __init__(self, facts: CampusFacts, dsn: str, mqtt_url: str, prefix: str) -> None:
        self.facts, self.dsn, self.mqtt_url, self.prefix = facts, dsn, mqtt_url, prefix
        self.gateway: Gateway | None = None

    async def start_gateway(self) -> None:
        self.gateway = Gateway(
            GatewayConfig(
                database_url=self.dsn,
                broker=BrokerAddress.parse(self.mqtt_url),
                topic_prefix=self.prefix,
                policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
                client_id=f"gw-{self.prefix}",  # the same persistent session on every start
            )
        )
        await self.gateway.start()

    async def stop_gateway(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None


@pytest.fixture
async def world(fresh_db, mqtt_url, tmp_path):
    campus = generate_campus(seed=43, people=300)
    path = tmp_path / "campus.yaml"
    dump_manifest(campus.manifest, path)
    conn = await connect(fresh_db)
    try:
        await import_file(conn, path, tz=TZ)
        tokens = {
            role: await add_operator(conn, role, role) for role in ("health_officer", "guard")
        }
    finally:
        await conn.close()
    world = World(campus.facts, fresh_db, mqtt_url, f"eg{secrets.token_hex(4)}")
    await world.start_gateway()
    app = create_app(Settings(database_url=fresh_db), fresh_db)
    try:
        async with (
            app.router.lifespan_context(app),
            Fleet(mqtt_url, campus.facts.mqtt_devices, prefix=world.prefix) as fleet,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as client,
        ):
            yield world, fleet, client, tokens
    finally:
        await world.stop_gateway()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def passed(terminal: SimTerminal, card: str, direction: str, expect: str = "admit/ok") -> str:
    eid = terminal.swipe(card, direction=direction)
    decision = await terminal.decision(eid, timeout=10)
    assert f"{decision['decision']}/{decision['reason']}" == expect, decision
    return eid


def office_staff(facts: CampusFacts, count: int) -> list[SimPerson]:
    people = [
        p
        for p in facts.people
        if p.kind == "staff" and p.active and not p.isolated and p.cards
        and p.id != facts.caretaker
    ]  # fmt: skip
    assert len(people) >= count
    return people[:count]


async def logged(dsn: str, device: str, event_ids: list[str]) -> list[dict]:
    """The log rows of these events, once the journal has written them all."""
    conn = await connect(dsn)
    try:
        for _ in range(100):
            rows = await conn.fetch(
                "SELECT * FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
                device,
                event_ids,
            )
            if len(rows) == len(event_ids):
                return [dict(r) for r in rows]
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"events {event_ids} of {device} never reached the access log")


async def test_held_person_leaves_ending_their_stay(world):
    world, fleet, client, tokens = world
    facts = world.facts
    held, later = office_staff(facts, 2)
    office = fleet[facts.office_device]
    zone = facts.door_zones[facts.office_door]
    await passed(office, held.cards[0], "in")

    # Put under a hold while inside, with a caretaker; the gateway hears of it by the
    # roster trigger: swipe in until it refuses.
    conn = await connect(world.dsn)
    try:
        record = HealthRecord(
            held.id,
            HealthStatus.CLOSE_CONTACT,
            since=datetime.now(UTC) - timedelta(minutes=1),
            reason="traced",
            caretaker_id=facts.caretaker,
        )
        await set_health(conn, record, changed_by="test")
    finally:
        await conn.close()
    for _ in range(100):
        eid = office.swipe(held.cards[0], direction="in")
        decision = await office.decision(eid, timeout=10)
        if decision["reason"] == "health_hold":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the hold never reached the gateway")

    inside = world.gateway.desk.occupancy.count(zone)
    out_id = await passed(office, held.cards[0], "out")  # free egress
    assert world.gateway.desk.occupancy.count(zone) == inside - 1  # the door's count too
    (row,) = await logged(world.dsn, facts.office_device, [out_id])
    assert (row["decision"], row["reason"], row["direction"]) == ("admit", "ok", "out")
    await world.gateway.journal.drain()
    conn = await connect(world.dsn)
    try:
        breaches = [
            a
            for a in await alert_store.open_alerts(conn, AlertKind.ISOLATION_BREACH)
            if a.person == held.id
        ]
    finally:
        await conn.close()
    leaving = [a for a in breaches if a.detail.get("direction") == "out"]
    assert len(leaving) == 1 and leaving[0].device == facts.office_device
    assert leaving[0].detail["caretaker"] == facts.caretaker
    assert all(a.detail["direction"] == "in" for a in breaches if a is not leaving[0])

    officer = auth(tokens["health_officer"])
    cases = await client.get(f"/api/caretakers/{facts.caretaker}/cases", headers=officer)
    assert cases.status_code == 200, cases.text
    (case,) = [c for c in cases.json() if c["person_id"] == held.id]
    assert (case["last_breach_door"], case["last_breach_direction"]) == (facts.office_door, "out")
    assert case["last_breach_at"] is not None

    guard = auth(tokens["guard"])
    muster = await client.get(f"/api/zones/{zone}/muster", headers=guard)
    assert muster.status_code == 200, muster.text
    assert held.id not in {r["person_id"] for r in muster.json()}

    # Someone who comes in after the held person left is no contact of theirs.
    await asyncio.sleep(1.5)
    in_id = await passed(office, later.cards[0], "in")
    await asyncio.sleep(2.0)
    last_id = await passed(office, later.cards[0], "out")
    await logged(world.dsn, facts.office_device, [in_id, last_id])
    response = await client.get(f"/api/tracing/{held.id}", params=QUERY, headers=officer)
    assert response.status_code == 200, response.text
    assert later.id not in {c["person_id"] for c in response.json()["contacts"]}


async def test_passages_queued_while_the_gateway_was_down_keep_their_time(world):
    world, fleet, client, tokens = world
    facts = world.facts
    x, y = office_staff(facts, 2)
    office = fleet[facts.office_device]
    await passed(office, x.cards[0], "out")  # the gateway's session is known to the broker
    await world.stop_gateway()

    # During the outage X and Y share the office for about three seconds.
    ids = [office.swipe(x.cards[0], direction="in"), office.swipe(y.cards[0], direction="in")]
    await asyncio.sleep(3.0)
    ids += [office.swipe(x.cards[0], direction="out"), office.swipe(y.cards[0], direction="out")]
    await asyncio.sleep(2.0)
    restarted = datetime.now(UTC)
    await world.start_gateway()
    for eid in ids:
        decision = await office.decision(eid, timeout=20)
        assert f"{decision['decision']}/{decision['reason']}" == "admit/ok"

    rows = await logged(world.dsn, facts.office_device, ids)
    for row in rows:
        assert row["gateway_ts"] >= restarted  # received after the restart ...
        assert row["received_at"] == row["device_ts"] < restarted  # ... logged when it happened
    by_id = {r["event_id"]: r for r in rows}
    overlap = by_id[ids[2]]["received_at"] - by_id[ids[1]]["received_at"]
    assert overlap >= timedelta(seconds=2.5)

    officer = auth(tokens["health_officer"])
    response = await client.get(f"/api/tracing/{x.id}", params=QUERY, headers=officer)
    assert response.status_code == 200, response.text
    contacts = {c["person_id"]: c for c in response.json()["contacts"]}
    assert y.id in contacts and contacts[y.id]["overlap_s"] >= 2
