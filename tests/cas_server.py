"""A small real CAS server for tests: issues one-time service tickets and validates them.

It speaks CAS 2.0 (/serviceValidate) and 3.0 (/p3/serviceValidate) over HTTP on a free
port, so the gateway's CAS client talks to a real peer. A ticket is good once, for the
service it was issued to (as the CAS protocol says: validation consumes it either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

NS = "http://www.yale.edu/tp/cas"


@dataclass
class CasServer:
    url: str = ""
    # Who "logs in" at /login next, and the attributes CAS releases for them.
    next_user: str = ""
    next_attributes: dict[str, str] = field(default_factory=dict)
    tickets: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    validations: list[tuple[str, str]] = field(default_factory=list)  # (path, ticket)

    def issue(self, service: str, user: str, attributes: dict[str, str] | None = None) -> str:
        ticket = f"ST-{secrets.token_hex(12)}"
        self.tickets[ticket] = (service, user, dict(attributes or {}))
        return ticket

    async def login(self, request: Request) -> Response:
        service = request.query_params["service"]
        ticket = self.issue(service, self.next_user, self.next_attributes)
        joiner = "&" if "?" in service else "?"
        return RedirectResponse(f"{service}{joiner}ticket={ticket}", status_code=302)

    async def validate(self, request: Request) -> Response:
        ticket = request.query_params.get("ticket", "")
        service = request.query_params.get("service", "")
        self.validations.append((request.url.path, ticket))
        found = self.tickets.pop(ticket, None)  # one use, whatever the outcome
        if found is None:
            return _failure("INVALID_TICKET", f"ticket {ticket} not recognized")
        issued_for, user, attributes = found
        if issued_for != service:
            return _failure("INVALID_SERVICE", "ticket was issued for another service")
        with_attributes = "/p3/" in request.url.path
        return _success(user, attributes if with_attributes else {})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cas/login", self.login),
                Route("/cas/serviceValidate", self.validate),
                Route("/cas/p3/serviceValidate", self.validate),
            ]
        )


def _xml(body: str) -> Response:
    text = f'<cas:serviceResponse xmlns:cas="{NS}">{body}</cas:serviceResponse>'
    return Response(text, media_type="application/xml")


def _failure(code: str, message: str) -> Response:
    return _xml(
        f'<cas:authenticationFailure code="{code}">{escape(message)}</cas:authenticationFailure>'
    )


def _success(user: str, attributes: dict[str, str]) -> Response:
    attrs = "".join(f"<cas:{k}>{escape(v)}</cas:{k}>" for k, v in attributes.items())
    return _xml(
        f"<cas:authenticationSuccess><cas:user>{escape(user)}</cas:user>"
        f"<cas:attributes>{attrs}</cas:attributes></cas:authenticationSuccess>"
    )


@contextlib.asynccontextmanager
async def running_cas() -> AsyncIterator[CasServer]:
    """A CAS server listening on a free loopback port in the running loop."""
    cas = CasServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(cas.app(), log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the CAS server did not start"
        await asyncio.sleep(0.02)
    cas.url = f"http://127.0.0.1:{sock.getsockname()[1]}/cas"
    try:
        yield cas
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        sock.close()
