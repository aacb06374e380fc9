"""ASGI middleware of the operator API: request body limits and security headers.

Both are plain ASGI (not BaseHTTPMiddleware), so a body is refused before it is read and
streamed answers (CSV, the alert stream) pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LOGGER = logging.getLogger(__name__)
# The console is served from files only: no inline script, no framing, no other origins.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class BodyTooLargeError(HTTPException):
    """413: raised while the body is read, so FastAPI's own body parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """Refuse bodies larger than `anonymous` bytes, or `authenticated` bytes for a request
    whose credentials check out (checked only when the body is larger than `anonymous`).

    The declared Content-Length is refused before anything is read; a body without one
    (chunked) is counted as it arrives and cut off at the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        anonymous: int,
        authenticated: int,
        is_authenticated: Callable[[Scope], Awaitable[bool]],
    ) -> None:
        self.app = app
        self.anonymous = anonymous
        self.authenticated = authenticated
        self.is_authenticated = is_authenticated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.anonymous
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await JSONResponse({"detail": "bad Content-Length"}, 400)(scope, receive, send)
                return
            if size > self.anonymous:
                if size > self.authenticated:
                    await self._refuse(scope, receive, send, self.authenticated)
                    return
                if not await self.is_authenticated(scope):
                    await self._refuse(scope, receive, send, self.anonymous, login=True)
                    return
                limit = self.authenticated
        elif "transfer-encoding" in headers and await self.is_authenticated(scope):
            limit = self.authenticated
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, limit: int, *, login: bool = False
    ) -> None:
        detail = f"request body larger than {limit} bytes"
        if login:
            detail += "; larger bodies (imports) need a logged-in operator"
        await JSONResponse({"detail": detail}, 413, headers={"Connection": "close"})(
            scope, receive, send
        )


class SecurityHeaders:
    """Security headers on every answer; `Cache-Control: no-store` on every /api answer
    (they carry personal data) unless the route chose its own."""

    def __init__(self, app: ASGIApp, *, csp_for: Callable[[str], str] | None = None) -> None:
        self.app = app
        self.csp_for = csp_for or (lambda path: CONSOLE_CSP)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", self.csp_for(path))
                if path.startswith("/api/"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, add_headers)


class HeavyGate:
    """The turns of database-heavy requests in one API process: `limit` served at once,
    at most `queue` waiting; one more is refused (503 with `Retry-After`) instead of
    queuing without bound, so a flood of exports neither fills PostgreSQL, which the
    doors' journal shares, nor piles up requests the client has long given up on."""

    RETRY_AFTER_S = 5

    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self.queue = queue
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self._slots: asyncio.Semaphore | None = None  # made on the serving loop

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        if self._slots.locked() and self.waiting >= self.queue:
            self._refuse_log()
            await JSONResponse(
                {
                    "detail": f"busy: {self.running} database-heavy requests are being served "
                    f"and {self.waiting} wait; retry in {self.RETRY_AFTER_S} s"
                },
                503,
                headers={"Retry-After": str(self.RETRY_AFTER_S)},
            )(scope, receive, send)
            return
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            await app(scope, receive, send)
        finally:
            self.running -= 1
            self._slots.release()

    def _refuse_log(self) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 100 == 0:  # a flood would fill the log
            _LOGGER.warning(
                "database-heavy requests refused (503) with %d served and %d waiting: %d so far",
                self.running,
                self.waiting,
                self.refused,
            )


class OneHeavyAtATime:
    """Requests that make the database work hard (traces, event pages, exports, imports,
    report runs) take turns through a HeavyGate (CAMPUSGATE_API_HEAVY_REQUESTS at once,
    CAMPUSGATE_API_HEAVY_QUEUE waiting); the others pass straight through."""

    def __init__(
        self, app: ASGIApp, *, is_heavy: Callable[[str, str], bool], gate: HeavyGate
    ) -> None:
        self.app = app
        self.is_heavy = is_heavy
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_heavy(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        await self.gate(self.app, scope, receive, send)


_HEAVY_PREFIXES = ("/api/tracing/", "/api/events", "/api/import", "/api/daily-reports/generate")
_HEAVY_SUFFIXES = ("/muster", "/export", "/csv", "/xlsx", "/inside")


def is_heavy(method: str, path: str) -> bool:
    """Whether a request is one of the database-heavy kinds (see OneHeavyAtATime)."""
    return path.startswith(_HEAVY_PREFIXES) or path.endswith(_HEAVY_SUFFIXES)
