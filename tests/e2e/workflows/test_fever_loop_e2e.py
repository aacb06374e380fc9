"""End to end: a fever at a real door, the guard's re-measurement, the officer's review."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from gateway_fixtures import running_gateway
from test_travel_e2e import CARD, _door

from api.app import create_app
from firmware_sim.fleet import Fleet
from gateway.domain.health import HealthStatus
from gateway.services.health import (
    StatusConflict,
    change_status,
    record_reading,
    resolve_fever_watch,
)
from gateway.services.health_jobs import health_jobs
from gateway.settings import Settings
from gateway.store.db import create_pool
from gateway.store.operators import add_operator


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


async def test_a_fever_at_a_door_is_not_cleared_over_the_api_without_a_normal_reading(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    """PUT status=clear and POST /clear check the re-measurement as the fever review does."""
    await _door(campus)
    token = await add_operator(campus, "ho", "health_officer")
    app = create_app(Settings(database_url=fresh_db), fresh_db)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {token}"},
        ) as officer,
        running_gateway(fresh_db, mqtt_url, label="wf") as (_, prefix),
        Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
    ):
        terminal = fleet["term-dorm"]
        fever = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=38.6))
        assert (fever["decision"], fever["reason"]) == ("deny", "fever")
        await _until(terminal, ("deny", "health_hold"))
        clear = {"status": "clear", "reason": "looks fine"}
        refused = await officer.put("/api/health/S1", json=clear)
        assert refused.status_code == 409 and "no re-measurement" in refused.text
        refused = await officer.post("/api/health/S1/clear", json={"reason": "looks fine"})
        assert refused.status_code == 409
        await _until(terminal, ("deny", "health_hold"))  # still held at the door
        reading = await officer.post("/api/health/S1/readings", json={"celsius": 36.4})
        assert reading.status_code == 201 and reading.json()["fever"] is False
        cleared = await officer.put("/api/health/S1", json=clear)
        assert cleared.status_code == 200, cleared.text
        await _until(terminal, ("admit", "ok"))


async def test_a_caretaker_with_a_fever_at_a_door_hands_the_cases_on(
    campus: asyncpg.Connection, fresh_db: str, mqtt_url: str
) -> None:
    """The gateway's journal sets fever_watch; the scheduled job reassigns the caretaker's
    cases, with a history row saying why."""
    await _door(campus)
    await campus.execute("UPDATE cards SET person_id = 'T1' WHERE uid = $1", CARD)
    await change_status(campus, "S2", HealthStatus.HOME_ISOLATION, by="ho", reason="r")
    assert await campus.fetchval("SELECT caretaker_id FROM health_status WHERE person_id='S2'") == (
        "T1"
    )
    pool = await create_pool(fresh_db, min_size=1, max_size=2)
    [job] = [j for j in health_jobs(pool, Settings()) if j.name == "caretaker-reassignment"]
    try:
        async with (
            running_gateway(fresh_db, mqtt_url, label="wf") as (_, prefix),
            Fleet(mqtt_url, ["term-dorm"], prefix=prefix) as fleet,
        ):
            terminal = fleet["term-dorm"]
            fever = await terminal.decision(terminal.swipe(CARD, direction="in", celsius=38.6))
            assert (fever["decision"], fever["reason"]) == ("deny", "fever")
            await _until(terminal, ("deny", "health_hold"))
        assert await job.run(datetime.now(UTC)) == {"reassigned": 1, "without_caretaker": 0}
    finally:
        await pool.close()
    row = await campus.fetchrow(
        "SELECT caretaker_id, reason, changed_by FROM health_history "
        "WHERE person_id = 'S2' ORDER BY id DESC LIMIT 1"
    )
    assert tuple(row) == ("T2", "caretaker T1 is fever_watch: reassigned to T2", "caretaking")
