"""The FastAPI app factory: routers, the pool (opened in the lifespan), the console page."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Scope

from api.alert_hub import AlertHub
from api.deps import SESSION_COOKIE, authenticate, idle_timeout
from api.errors import add_error_handlers
from api.middleware import (
    CONSOLE_CSP,
    BodyLimit,
    HeavyGate,
    OneHeavyAtATime,
    SecurityHeaders,
    is_heavy,
)
from api.routers import (
    alerts,
    audit,
    auth,
    campus,
    caretakers,
    checkins,
    counts,
    daily_reports,
    doors,
    events,
    grants,
    health,
    imports,
    levels,
    me_care,
    me_checkin,
    me_trips,
    monitoring,
    my_visitor_passes,
    occupancy,
    own_record,
    people,
    people_sign_in,
    person_invitations,
    privacy,
    stream,
    tracing,
    travel,
    visitor_passes,
)
from gateway.settings import Settings
from gateway.store.db import create_pool

STATIC = Path(__file__).parent / "static"
_LOGGER = logging.getLogger(__name__)
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


DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


async def _has_valid_credentials(scope: Scope) -> bool:
    """Whether a request's bearer token or session cookie is an operator's (body limits)."""
    connection = HTTPConnection(scope)
    auth = Headers(scope=scope).get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not token and not cookie:
        return False
    app = scope["app"]
    async with app.state.pool.acquire() as conn:
        found = await authenticate(conn, token, cookie, idle_timeout(app), touch=False)
    return found is not None


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
    app.add_middleware(
        BodyLimit,
        anonymous=settings.max_body_anonymous,
        authenticated=settings.max_body,
        is_authenticated=_has_valid_credentials,
    )
    app.state.heavy_gate = HeavyGate(settings.api_heavy_requests, settings.api_heavy_queue)
    app.add_middleware(OneHeavyAtATime, is_heavy=is_heavy, gate=app.state.heavy_gate)
    app.add_middleware(
        SecurityHeaders, csp_for=lambda path: DOCS_CSP if path == "/docs" else CONSOLE_CSP
    )
    app.state.metrics = monitoring.ApiMetrics()
    for module in (
        auth,
        campus,
        doors,
        occupancy,
        levels,
        alerts,
        people,
        person_invitations,
        people_sign_in,
        own_record,
        privacy,
        health,
        caretakers,
        checkins,
        me_checkin,
        travel,
        events,
        counts,
        daily_reports,
        grants,
        audit,
        imports,
        tracing,
        stream,
        monitoring,
        me_care,
        me_trips,
        visitor_passes,
        my_visitor_passes,
    ):
        app.include_router(module.router)
    add_error_handlers(app)

    @app.exception_handler(asyncpg.DataError)
    async def _bad_value(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # e.g. a NUL byte or an out-of-range value the database cannot take: the input's fault.
        # The database's own words (which may quote the statement or values) stay in the log.
        _LOGGER.info("%s %s: database refused a value: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["query"],
                        "msg": "a value the database cannot store (e.g. a NUL character "
                        "or a number out of range)",
                        "type": "data_error",
                    }
                ]
            },
            status_code=422,
        )

    @app.exception_handler(asyncpg.PostgresError)
    async def _database_error(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        _LOGGER.error(
            "%s %s: database error %s", request.method, request.url.path, exc, exc_info=exc
        )
        return JSONResponse(
            {"detail": "database error; the server log has the details"}, status_code=500
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input as UTF-8; a lone surrogate ("\\ud800" is
        # valid JSON) cannot be encoded so, and became a 500. ASCII JSON escapes it.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    add_offline_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/me", include_in_schema=False)
    async def person_page_slash() -> RedirectResponse:
        return RedirectResponse("/me/", status_code=308)

    @app.get("/me/", include_in_schema=False)
    async def person_page() -> FileResponse:
        # The mobile page of students and staff (api/static/me/), apart from the console.
        return FileResponse(STATIC / "me" / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def add_offline_docs(app: FastAPI) -> None:
    """GET /docs: Swagger UI served from api/static/vendor, reading /openapi.json."""

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)
