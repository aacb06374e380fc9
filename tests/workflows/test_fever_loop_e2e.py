"""End to end: a fever at a real door, the guard's re-measurement, the officer's review."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from gateway_fixtures import running_gateway
from test_travel_e2e import CARD, _door

from firmware_sim.fleet import Fleet
from gateway.services.health import StatusConflict, record_reading, resolve_fever_watch


async def _until(terminal, want: tuple[str, str], *, within_s: float = 5.0) -> dict:  # type: ignore[no-untyped-def]
    """Swipe (with a normal reading) until the door answers `want`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        decision = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=36.5))
        if (decision["decision"], decision["reason"]) == want:
            return decision
        assert loop.time() - started < within_s, f"the door still answers {decision}"
        await asyncio.sleep(0.05)


async def test_fever_then_re_measurement_then_cleared_admits_again(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    await _door(campus)
    async with (
        running_gateway(fresh_db, mqtt_url, label="wf") as (_, prefix),
        Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
    ):
        terminal = fleet["term-dorm"]
        fever = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=38.4))
        assert (fever["decision"], fever["reason"]) == ("deny", "fever")
        # The gateway put S1 on fever_watch: held at the door even with a normal reading.
        await _until(terminal, ("deny", "health_hold"))
        status = await campus.fetchval("SELECT status FROM health_status WHERE person_id = 'S1'")
        assert status == "fever_watch"
        # No clearing without a re-measurement; a fever re-measurement does not clear.
        with pytest.raises(StatusConflict, match="no re-measurement"):
            await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="ok?")
        await record_reading(campus, "S1", 37.9, by="guard", threshold_c=37.3)
        with pytest.raises(StatusConflict, match="is a fever"):
            await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="37.9")
        await record_reading(campus, "S1", 36.6, by="guard", threshold_c=37.3)
        await resolve_fever_watch(campus, "S1", escalate=False, by="ho", reason="36.6 twice")
        await _until(terminal, ("admit", "ok"))
