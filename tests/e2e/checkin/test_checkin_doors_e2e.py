"""End to end through the real gateway, broker and simulated doors: a check-in reaches
the door (issue #15). Latencies are printed (figures, not asserts; run with -s)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from checkin_campus import CARD, add_door, api
from gateway_fixtures import running_gateway

from firmware_sim.fleet import Fleet
from gateway.store.operators import add_operator

LEVEL = {
    "title_zh": "打卡",
    "title_en": "Check-in",
    "checkin_zones": ["dorm"],
}


async def _until(terminal, want: tuple[str, str], *, within_s: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    """Swipe (normal reading) until the door answers `want`; seconds it took."""
    started = time.perf_counter()
    while True:
        decision = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=36.5))
        if (decision["decision"], decision["reason"]) == want:
            return time.perf_counter() - started
        assert time.perf_counter() - started < within_s, f"the door still answers {decision}"
        await asyncio.sleep(0.02)


async def test_checkin_with_fever_holds_the_person_at_the_next_door(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    await add_door(campus)
    async with (
        api(fresh_db) as person,
        running_gateway(fresh_db, mqtt_url, label="ci") as (_, prefix),
        Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
    ):
        terminal = fleet["term-dorm"]
        await _until(terminal, ("admit", "ok"))
        answer = await person.check_in("S1", temperature_c=38.2)
        assert answer.json()["hold"] == "fever_watch"
        took = await _until(terminal, ("deny", "health_hold"))
        print(f"\ncheck-in with fever -> held at the door after {took * 1000:.0f} ms")


async def test_level_requiring_checkin_denies_then_admits_the_same_card(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    await add_door(campus)
    admin = await add_operator(campus, "root", "admin")
    async with (
        api(fresh_db) as person,
        person.operator(admin) as operator,
        running_gateway(fresh_db, mqtt_url, label="ci") as (gateway, prefix),
        Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
    ):
        terminal = fleet["term-dorm"]
        await _until(terminal, ("admit", "ok"))
        unknown = await operator.put(
            "/api/levels/definitions/checkin", json={**LEVEL, "checkin_zones": ["nowhere"]}
        )
        assert unknown.status_code == 422 and "unknown zone" in unknown.text
        defined = await operator.put("/api/levels/definitions/checkin", json=LEVEL)
        assert defined.status_code == 200 and defined.json()["checkin_zones"] == ["dorm"]
        assert (await operator.put("/api/levels", json={"level": "checkin"})).status_code == 200
        denied = await _until(terminal, ("deny", "checkin_required"))
        print(f"\nlevel set -> checkin_required after {denied * 1000:.0f} ms")
        decision = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=36.5))
        assert decision["message"] == "Please do today's check-in on your phone"
        assert gateway.roster is not None
        reloads, applied = gateway.roster.reloads, gateway.roster.checkins_applied
        assert (await person.check_in("S1")).status_code == 200
        admitted = await _until(terminal, ("admit", "ok"))
        print(f"check-in -> the same card admitted after {admitted * 1000:.0f} ms")
        # The check-in reached the roster as itself, not through a full reload.
        assert gateway.roster.reloads == reloads
        assert gateway.roster.checkins_applied == applied + 1
        # Leaving is never asked for a check-in (free egress).
        out = await terminal.decision(terminal.swipe(CARD, direction="out"))
        assert (out["decision"], out["reason"]) == ("admit", "ok")
