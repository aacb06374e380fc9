"""The API's /metrics, /healthz and /readyz over the app, as Prometheus and a prober see them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
from db_proxy import FaultyProxy
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.routers.monitoring import ApiMetrics
from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.settings import Settings
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect
from gateway.store.devices import set_device_state

TOKEN = "api-metrics-token-0123456789"


@contextlib.asynccontextmanager
async def client_of(dsn: str, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app whose store gauges are read again at every scrape."""
    app = create_app(Settings(database_url=dsn, **settings), dsn)
    app.state.metrics = ApiMetrics(ttl_s=0)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield client


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def open_alerts(samples: dict, kind: str, severity: str) -> float:
    return samples.get(("campusgate_alerts_open", (("kind", kind), ("severity", severity))), 0.0)


async def test_metrics_show_open_alerts_and_devices_from_the_store(api_world):
    async with client_of(api_world.dsn) as client:
        before = await scrape(client)
        assert before[("campusgate_store_gauges_up", ())] == 1
        online = before[("campusgate_devices", (("state", "online"),))]
        offline = before[("campusgate_devices", (("state", "offline"),))]
        conn = await connect(api_world.dsn)
        try:
            await insert_alerts(
                conn,
                [
                    Alert(
                        f"a-door-forced-{secrets.token_hex(4)}",
                        AlertKind.DOOR_FORCED,
                        datetime.now(UTC),
                        Severity.HIGH,
                        "lab-1-door",
                        "lab-1",
                        "term-lab-1",
                    )
                ],
            )
            states = await conn.fetch("SELECT device_id, online FROM device_status")
            known = {r["device_id"]: r["online"] for r in states}
            await set_device_state(conn, "term-lab-1", online=False, ts=datetime.now(UTC))
        finally:
            await conn.close()
        after = await scrape(client)
        assert open_alerts(after, "door_forced", "high") == (
            open_alerts(before, "door_forced", "high") + 1
        )
        was = known.get("term-lab-1")
        expected = (
            (online, offline)
            if was is False
            else (online - 1, offline + 1)
            if was is True
            else (online, offline + 1)
        )
        assert (
            after[("campusgate_devices", (("state", "online"),))],
            after[("campusgate_devices", (("state", "offline"),))],
        ) == expected
        assert after[("process_resident_memory_bytes", ())] > 0


async def test_metrics_token_when_set(api_world):
    async with client_of(api_world.dsn, metrics_token=TOKEN) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        samples = await scrape(client, Authorization=f"Bearer {TOKEN}")
        assert samples[("campusgate_store_gauges_up", ())] == 1
        # Probes stay open: they say nothing but "alive" and "ready".
        assert (await client.get("/healthz")).json() == {"status": "alive"}


async def test_healthz_and_readyz_follow_the_database(api_world):
    async with FaultyProxy(api_world.dsn) as proxy, client_of(proxy.dsn) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "checks": {"database": "ok"}}
        proxy.cut()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"].startswith("unreachable")
        alive = await client.get("/healthz")
        assert alive.status_code == 200 and alive.json() == {"status": "alive"}
        samples = await scrape(client)  # still answers, saying the store is away
        assert samples[("campusgate_store_gauges_up", ())] == 0
        proxy.accept()
        assert (await client.get("/readyz")).status_code == 200
