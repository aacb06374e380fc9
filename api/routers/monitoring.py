"""/metrics (Prometheus), /healthz (alive) and /readyz (database reachable) of the API process.

The API's metrics are campus-wide counts from the store (alerts open by kind and
severity, devices by presence), cached for a few seconds, and the process's own
figures; the door figures are on each worker's /metrics. Nothing here carries personal
data; with CAMPUSGATE_METRICS_TOKEN set, /metrics wants that bearer token.
"""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from gateway.observe.status_server import bearer_ok
from gateway.observe.store_gauges import TTL_S, StoreGauges
from gateway.store.db import acquire, ping

PING_DEADLINE_S = 2.0

router = APIRouter(tags=["monitoring"])


class ApiMetrics:
    """The API process's registry: store gauges (with devices) and process figures."""

    def __init__(self, *, ttl_s: float = TTL_S) -> None:
        self.store = StoreGauges(None, with_devices=True, ttl_s=ttl_s)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.store)
        ProcessCollector(registry=self.registry)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if not bearer_ok({k.lower(): v for k, v in request.headers.items()}, token):
        return PlainTextResponse(
            "metrics need Authorization: Bearer <CAMPUSGATE_METRICS_TOKEN>\n",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    state: ApiMetrics = request.app.state.metrics
    state.store.pool = getattr(request.app.state, "pool", None)
    await state.store.refresh()
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encoder(state.registry), media_type=content_type, headers={"Cache-Control": "no-store"}
    )


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "alive"}, headers={"Cache-Control": "no-store"})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    pool: asyncpg.Pool | None = getattr(request.app.state, "pool", None)
    database = "not connected"
    if pool is not None:
        try:
            async with acquire(pool, PING_DEADLINE_S, check_s=None) as conn:
                await ping(conn)
            database = "ok"
        except Exception as exc:  # whatever the cause, the answer is "not reachable"
            database = f"unreachable: {type(exc).__name__}"
    ready = database == "ok"
    return JSONResponse(
        {"ready": ready, "checks": {"database": database}},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
