"""End to end: passages from simulated MQTT terminals through a running gateway into the
access log are traced over the API (JSON and CSV); a marked contact is then denied
`health_hold` at the door by the same gateway."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import dump_manifest, generate_campus
from firmware_sim.chain import traced_chain
from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.operators import add_operator

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def world(fresh_db, mqtt_url, tmp_path):
    campus = generate_campus(seed=31, people=300)
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
    prefix = f"tr{secrets.token_hex(4)}"
    gateway = Gateway(
        GatewayConfig(
            database_url=fresh_db,
            broker=BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
            client_id=f"gw-{prefix}",
        )
    )
    await gateway.start()
    app = create_app(Settings(database_url=fresh_db), fresh_db)
    try:
        async with (
            app.router.lifespan_context(app),
            Fleet(mqtt_url, campus.facts.mqtt_devices, prefix=prefix) as fleet,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as client,
        ):
            yield campus.facts, fleet, client, tokens, fresh_db
    finally:
        await gateway.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _logged(dsn: str, person: str, count: int) -> None:
    """Wait until the journal has written `count` admitted passages of `person`."""
    conn = await connect(dsn)
    try:
        for _ in range(100):
            n = await conn.fetchval(
                "SELECT count(*) FROM access_events WHERE person_id = $1 AND decision = 'admit'",
                person,
            )
            if n >= count:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"passages of {person} never reached the access log")


async def test_chain_is_traced_and_marked_contact_is_denied(world):
    facts, fleet, client, tokens, dsn = world
    chain = await traced_chain(fleet, facts, dwell_s=2.0)
    assert chain.result.ok, str(chain.result)
    await _logged(dsn, chain.c, 2)
    officer = auth(tokens["health_officer"])
    query = {"days": 1, "generations": 2, "min_overlap_s": 1, "second_min_exposure_s": 1}
    response = await client.get(f"/api/tracing/{chain.a}", params=query, headers=officer)
    assert response.status_code == 200, response.text
    body = response.json()
    by_person = {c["person_id"]: c for c in body["contacts"]}
    assert by_person[chain.b]["generation"] == 1
    assert by_person[chain.b]["zones"] == [chain.zone_ab]
    assert by_person[chain.c]["generation"] == 2
    assert by_person[chain.c]["zones"] == [chain.zone_bc]
    assert by_person[chain.c]["via"] == [chain.b] and chain.b in body["second_seeds"]
    assert body["second_seeds_truncated"] is False
    assert by_person[chain.b]["overlap_s"] >= 1 and by_person[chain.b]["name"]

    response = await client.get(
        f"/api/tracing/{chain.a}", params={**query, "format": "csv"}, headers=officer
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["person_id"]: (r["generation"], r["via"]) for r in table}[chain.c] == ("2", chain.b)
    # At the default 15 minutes, the seconds-long stays of the chain seed no second generation.
    response = await client.get(
        f"/api/tracing/{chain.a}",
        params={**query, "second_min_exposure_s": 900},
        headers=officer,
    )
    assert response.json()["second_seeds"] == []
    assert chain.c not in {c["person_id"] for c in response.json()["contacts"]}
    capped = {**query, "second_max_seeds": 501}
    assert (
        await client.get(f"/api/tracing/{chain.a}", params=capped, headers=officer)
    ).status_code == 422

    guard = auth(tokens["guard"])
    assert (await client.get(f"/api/tracing/{chain.a}", headers=guard)).status_code == 403
    assert (await client.get("/api/tracing/nobody", headers=officer)).status_code == 404
    bad = await client.get(f"/api/tracing/{chain.a}", params={"days": 0}, headers=officer)
    assert bad.status_code == 422
    clash = {"days": 2, "from": "2026-01-01T00:00:00+08:00"}
    assert (
        await client.get(f"/api/tracing/{chain.a}", params=clash, headers=officer)
    ).status_code == 422

    response = await client.post(
        f"/api/tracing/{chain.a}/mark",
        json={"contacts": [chain.b], "reason": "index confirmed"},
        headers=officer,
    )
    assert response.status_code == 200, response.text
    marked = response.json()
    assert [m["person_id"] for m in marked["marked"]] == [chain.b] and marked["skipped"] == []
    assert (
        await client.post(f"/api/tracing/{chain.a}/mark", json={"contacts": []}, headers=officer)
    ).status_code == 422

    # The roster trigger tells the gateway: B is denied at the dormitory door at once.
    card = next(p.cards[0] for p in facts.people if p.id == chain.b)
    door = fleet[facts.temperature_device]
    outcome = None
    for _ in range(20):
        decision = await door.decision(door.swipe(card, celsius=36.5), 5.0)
        outcome = f"{decision['decision']}/{decision['reason']}"
        if outcome == "deny/health_hold":
            break
        await asyncio.sleep(0.1)
    assert outcome == "deny/health_hold"
