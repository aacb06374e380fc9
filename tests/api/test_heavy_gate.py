"""Database-heavy requests take turns, and a full queue refuses with 503 and Retry-After
(issue 12, point 6: an API flood must not fill PostgreSQL, which the doors' journal shares).

Real API, real PostgreSQL: the first heavy request is held by a table lock another
connection takes, so the turns are seen without timing anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from api.app import create_app
from gateway.settings import Settings
from gateway.store.db import connect


async def _until(condition: Callable[[], bool]) -> None:
    # The gate's counters are plain ints with nothing to wait on: look again each turn.
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def test_a_full_queue_of_heavy_requests_is_refused_with_retry_after(api_world) -> None:
    settings = Settings(
        database_url=api_world.dsn,
        login_failures_per_address=100_000,
        api_heavy_requests=1,
        api_heavy_queue=1,
    )
    app = create_app(settings, api_world.dsn)
    headers = {"Authorization": f"Bearer {api_world.tokens['admin']}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
        ) as client,
    ):
        gate = app.state.heavy_gate
        locker = await connect(api_world.dsn)
        transaction = locker.transaction()
        await transaction.start()
        try:
            await locker.execute("LOCK TABLE access_events IN ACCESS EXCLUSIVE MODE")
            first = asyncio.create_task(client.get("/api/events?limit=5"))
            await _until(lambda: gate.running == 1)  # served, and stuck on the lock
            second = asyncio.create_task(client.get("/api/events?limit=5"))
            await _until(lambda: gate.waiting == 1)
            refused = await client.get("/api/tracing/S001?days=1")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert "retry in 5 s" in refused.json()["detail"]
            # Requests that are not heavy pass by the queue.
            assert (await client.get("/api/alerts")).status_code == 200
            assert not first.done() and not second.done()
        finally:
            await transaction.rollback()
            await locker.close()
        assert (await first).status_code == 200
        assert (await second).status_code == 200
        assert (gate.running, gate.waiting, gate.refused) == (0, 0, 1)
        # The queue drained: heavy requests are served again.
        assert (await client.get("/api/tracing/S001?days=1")).status_code == 200


async def test_no_queue_refuses_a_second_heavy_request_at_once(api_world) -> None:
    settings = Settings(database_url=api_world.dsn, api_heavy_requests=1, api_heavy_queue=0)
    app = create_app(settings, api_world.dsn)
    headers = {"Authorization": f"Bearer {api_world.tokens['admin']}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
        ) as client,
    ):
        gate = app.state.heavy_gate
        locker = await connect(api_world.dsn)
        transaction = locker.transaction()
        await transaction.start()
        try:
            await locker.execute("LOCK TABLE access_events IN ACCESS EXCLUSIVE MODE")
            first = asyncio.create_task(client.get("/api/events?limit=5"))
            await _until(lambda: gate.running == 1)
            assert (await client.get("/api/events?limit=5")).status_code == 503
        finally:
            await transaction.rollback()
            await locker.close()
        assert (await first).status_code == 200
