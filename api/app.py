"""The FastAPI app factory: routers, the pool (opened in the lifespan), the console page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from api.routers import (
    alerts,
    audit,
    auth,
    campus,
    caretakers,
    daily_reports,
    doors,
    events,
    grants,
    health,
    imports,
    levels,
    occupancy,
    people,
    privacy,
    reports,
    stream,
    tracing,
    travel,
)
from api.routers.auth import LoginLimiter
from api.stream import AlertHub
from gateway.settings import Settings
from gateway.store.db import create_pool

STATIC = Path(__file__).parent / "static"
SWAGGER = "/static/vendor/swagger-ui"
# Swagger UI from the app's own files: /docs works on an intranet without internet, and its
# start-up is a file (static/docs.js), not an inline script, so a strict CSP needs no hash.
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CampusGate operator API</title>
<link rel="icon" href="{SWAGGER}/favicon-32x32.png">
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def create_app(settings: Settings, dsn: str) -> FastAPI:
    """An app serving the API and console against the database at `dsn` (migrated already)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(dsn, min_size=1, max_size=10)
        hub = AlertHub(dsn, pool)
        await hub.start()
        app.state.pool = pool
        app.state.alert_hub = hub
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    app = FastAPI(
        title="CampusGate operator API",
        version="0.1.0",
        description="Alerts, doors, devices, people, health statuses, grants, audit; "
        "bearer API tokens (`campusgate user add`) or a console session.",
        lifespan=lifespan,
        docs_url=None,  # served by add_offline_docs, without a CDN
        redoc_url=None,  # ReDoc loads from a CDN too, and /docs covers it
    )
    app.state.settings = settings
    app.state.login_limiter = LoginLimiter()
    for module in (
        auth,
        campus,
        doors,
        occupancy,
        levels,
        alerts,
        people,
        privacy,
        health,
        caretakers,
        travel,
        events,
        reports,
        daily_reports,
        grants,
        audit,
        imports,
        tracing,
        stream,
    ):
        app.include_router(module.router)

    @app.exception_handler(asyncpg.DataError)
    async def _bad_value(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # e.g. a NUL byte or an out-of-range value the database cannot take: the input's fault.
        return JSONResponse(
            {"detail": [{"loc": ["query"], "msg": str(exc), "type": "data_error"}]},
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input as UTF-8; a lone surrogate ("\\ud800" is
        # valid JSON) cannot be encoded so, and became a 500. ASCII JSON escapes it.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_offline_docs(app)

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def add_offline_docs(app: FastAPI) -> None:
    """GET /docs: Swagger UI served from api/static/vendor, reading /openapi.json."""

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)
