"""The FastAPI app factory: routers, the pool (opened in the lifespan), the console page."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Scope

from api.deps import SESSION_COOKIE, authenticate, idle_timeout
from api.middleware import CONSOLE_CSP, BodyLimit, OneHeavyAtATime, SecurityHeaders, is_heavy
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
    monitoring,
    occupancy,
    people,
    privacy,
    reports,
    stream,
    tracing,
    travel,
)
from api.stream import AlertHub
from gateway.settings import Settings
from gateway.store.db import create_pool

STATIC = Path(__file__).parent / "static"
_LOGGER = logging.getLogger(__name__)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
SWAGGER_CDN = "https://cdn.jsdelivr.net"


def _docs_page() -> tuple[HTMLResponse, str]:
    """Swagger UI, and a CSP admitting its one inline script by hash (and its CDN)."""
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="CampusGate operator API")
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    csp = (
        f"default-src 'self'; script-src {SWAGGER_CDN} {hashes}; style-src {SWAGGER_CDN}; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return page, csp


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
        docs_url=None,
    )
    app.state.settings = settings
    docs_page, docs_csp = _docs_page()
    app.add_middleware(
        BodyLimit,
        anonymous=settings.max_body_anonymous,
        authenticated=settings.max_body,
        is_authenticated=_has_valid_credentials,
    )
    app.add_middleware(OneHeavyAtATime, is_heavy=is_heavy, limit=settings.api_heavy_requests)
    app.add_middleware(
        SecurityHeaders, csp_for=lambda path: docs_csp if path == "/docs" else CONSOLE_CSP
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
        monitoring,
    ):
        app.include_router(module.router)

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

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_page

    return app
