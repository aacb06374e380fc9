"""A TCP proxy that a test controls, in front of PostgreSQL or an MQTT broker (imported,
not a conftest). The one fault proxy of the tests and of tests/e2e/bench/soak_faults.py.

In the style of asyncpg's own fault-injecting proxy tests: the gateway talks to the
database (or broker) through it, and the test decides what the network does to each
connection.

- `black_hole()`: the connections open now stop carrying bytes either way, but stay
  open (a NAT entry or firewall state lost, a peer gone without a FIN): whoever waits
  on them waits forever. New connections pass as usual, unless `new_too=True` (a dead
  route): then a new connection is accepted but goes nowhere until `heal()`.
- `drop_replies()`: the connections open now still carry the client's bytes to the
  server but lose every reply (the server commits, the client never hears of it).
- `heal()`: those spoiled connections are reset at last, as a router that comes back
  answers a stale connection with a reset.
- `refuse()` / `accept()`: new connections are reset at once, or taken again.
- `cut()`: the far end is gone: open connections are reset, and new ones, until `accept()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class _Link:
    """One client connection and its upstream twin."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.to_server = True  # forward the client's bytes
        self.to_client = True  # forward the server's bytes

    def abort(self) -> None:
        self.client.transport.abort()
        self.server.transport.abort()


class FaultyProxy:
    """`FaultyProxy(dsn)` in front of a database, `FaultyProxy("mqtt://host:port")` or any
    URL with a host and port in front of another server."""

    def __init__(self, dsn: str) -> None:
        target = urlsplit(dsn)
        self._dsn = dsn
        self._target = (target.hostname or "127.0.0.1", target.port or 5432)
        self._routed = asyncio.Event()  # cleared: new connections hang (a dead route)
        self._routed.set()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.refusing = False
        self.port = 0
        self.accepted = 0
        self.attempts: list[float] = []  # loop time of every connection attempt, refused or not

    @property
    def dsn(self) -> str:
        """The database's DSN pointing through the proxy."""
        parts = urlsplit(self._dsn)
        userinfo = parts.netloc.rsplit("@", 1)
        user = f"{userinfo[0]}@" if len(userinfo) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.refusing = True
        self._routed.set()
        for link in list(self._links):
            link.abort()
        self._links.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> FaultyProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def open_links(self) -> int:
        return len(self._links)

    def black_hole(self, *, new_too: bool = False) -> int:
        """Stop every open connection carrying bytes, keep it open; returns how many.
        `new_too`: new connections are accepted but hang until `heal()`."""
        if new_too:
            self._routed.clear()
        for link in self._links:
            link.to_server = link.to_client = False
        return len(self._links)

    def drop_replies(self) -> int:
        """Open connections still deliver the client's bytes but lose the server's."""
        for link in self._links:
            link.to_client = False
        return len(self._links)

    def heal(self) -> int:
        """Reset the connections a fault spoiled (their peers see a reset); returns how many."""
        self._routed.set()
        spoiled = [link for link in self._links if not (link.to_server and link.to_client)]
        for link in spoiled:
            link.abort()
            self._links.discard(link)
        return len(spoiled)

    def refuse(self) -> None:
        """Reset new connections at once."""
        self.refusing = True

    def cut(self) -> None:
        """The database is gone: every open connection is reset and new ones too."""
        self.refusing = True
        for link in list(self._links):
            link.abort()
        self._links.clear()

    def accept(self) -> None:
        self.refusing = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts.append(asyncio.get_running_loop().time())
        if self.refusing:
            writer.transport.abort()
            return
        await self._routed.wait()  # a connect into a dead route hangs
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        if self.refusing:  # cut while this one was being set up: it is gone with the rest
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer, upstream=True),
                self._pump(link, up_reader, writer, upstream=False),
            )
        finally:
            self._tasks.discard(task)
            self._links.discard(link)

    @staticmethod
    async def _pump(
        link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                if not (link.to_server if upstream else link.to_client):
                    continue  # swallowed: the packet never arrives
                dst.write(data)
                await dst.drain()
        # An end seen by a black-holed link is not passed on either: no FIN crosses a black hole.
        if link.to_server and link.to_client:
            link.abort()
