"""End to end: a declaration returning from a listed area holds the person at a real door."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from gateway_fixtures import running_gateway

from firmware_sim.fleet import Fleet
from gateway.services.travel import TravelRules, Trip, add_area, declare

TZ = ZoneInfo("Asia/Shanghai")
RULES = TravelRules(isolation_days=14, tz=TZ)
CARD = "04A1B2C3"


async def _door(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        INSERT INTO zones (id, name, kind) VALUES ('dorm', 'Dorm', 'dormitory');
        INSERT INTO doors (id, zone_id, direction) VALUES ('dorm-main', 'dorm', 'both');
        INSERT INTO devices (id, door_id, kind) VALUES ('term-dorm', 'dorm-main', 'terminal');
        INSERT INTO cards (uid, person_id) VALUES ('04A1B2C3', 'S1');
        INSERT INTO grants (subject_org_unit, zone_id) VALUES ('cs', 'dorm');
        """
    )


async def test_declared_return_from_epidemic_area_is_denied_health_hold(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    await _door(campus)
    async with (
        running_gateway(fresh_db, mqtt_url, label="wf") as (_, prefix),
        Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
    ):
        terminal = fleet["term-dorm"]
        first = await terminal.decision(terminal.swipe(CARD, direction="in"))
        assert (first["decision"], first["reason"]) == ("admit", "ok")
        today = datetime.now(TZ).date()
        values = {
            "name": "Wuhan",
            "match": "wuhan",
            "effective_from": today - timedelta(days=30),
            "effective_until": None,
        }
        await add_area(campus, values, RULES, by="ho")
        trip = Trip("S1", "Wuhan", today - timedelta(days=5), today - timedelta(days=1))
        _, evaluation = await declare(campus, [trip], RULES, by="liaison")
        assert evaluation.isolated == ["S1"]
        loop = asyncio.get_running_loop()
        declared_at = loop.time()
        while True:
            decision = await terminal.decision(terminal.swipe(CARD, direction="in"))
            if (decision["decision"], decision["reason"]) == ("deny", "health_hold"):
                break
            assert loop.time() - declared_at < 5, "the isolation never reached the door"
            await asyncio.sleep(0.05)
        assert loop.time() - declared_at < 1.5  # doors react within about a second
