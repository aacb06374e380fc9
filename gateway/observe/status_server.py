"""A tiny HTTP/1.1 server on the worker's own event loop for /metrics, /healthz, /readyz.

No framework: a scrape is one GET answered and closed. Requests are read within a
deadline and a size limit and connections are capped, so a slow or hostile client
cannot hold the loop or pile up tasks; handlers run on the loop thread, where the
gateway's state they read is consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

_LOGGER = logging.getLogger(__name__)

READ_DEADLINE_S = 5.0
WRITE_DEADLINE_S = 10.0
MAX_HEAD_BYTES = 8192
MAX_CONNECTIONS = 32
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object) -> Response:
        return cls(status, json.dumps(payload).encode() + b"\n")


Handler = Callable[[Request], Awaitable[Response]]


def bearer_ok(headers: Mapping[str, str], token: str | None) -> bool:
    """True when no token is required, or the request carries it (constant-time compare)."""
    if token is None:
        return True
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class StatusServer:
    """Serves `routes` (path -> handler) on host:port; port 0 picks a free one."""

    def __init__(self, routes: Mapping[str, Handler], host: str, port: int) -> None:
        self._routes = dict(routes)
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._active = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "::", "") else self._host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen; raises OSError (e.g. the port is taken) for the caller to explain."""
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEAD_BYTES
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._active >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._active += 1
        try:
            response, method = await self._answer(reader)
            if response is not None:
                async with asyncio.timeout(WRITE_DEADLINE_S):
                    writer.write(_encode(response, head_only=method == "HEAD"))
                    await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            self._active -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response | None, str]:
        try:
            async with asyncio.timeout(READ_DEADLINE_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            return Response.json(400, {"error": "request head too large"}), "GET"
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            return None, "GET"  # gone or silent: nothing to answer
        request = _parse(head)
        if request is None:
            return Response.json(400, {"error": "not an HTTP/1.x request"}), "GET"
        if request.method not in ("GET", "HEAD"):
            response = Response.json(405, {"error": "only GET and HEAD"})
            return Response(405, response.body, headers={"Allow": "GET, HEAD"}), request.method
        handler = self._routes.get(request.path)
        if handler is None:
            return Response.json(404, {"error": "no such path", "paths": sorted(self._routes)}), (
                request.method
            )
        try:
            return await handler(request), request.method
        except Exception:
            _LOGGER.exception("status server: %s failed", request.path)
            return Response.json(500, {"error": "internal error; see the worker's log"}), (
                request.method
            )


def _parse(head: bytes) -> Request | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(method, target.split("?", 1)[0], headers)


def _encode(response: Response, *, head_only: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
        *(f"{k}: {v}" for k, v in response.headers.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body
