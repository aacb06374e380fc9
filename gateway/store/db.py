"""Connections and pools with the codecs every repository relies on.

Repositories take an asyncpg connection made here (or from a pool made here):
`jsonb` columns then travel as Python dicts and lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_LOGGER = logging.getLogger(__name__)

# TCP keepalive: a peer that vanished without a word (a lost NAT entry, a powered-off host)
# is noticed in about KEEPALIVE_IDLE_S + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL_S seconds, and
# unacknowledged writes give up after USER_TIMEOUT_MS. asyncpg offers no keepalive settings,
# so they are set on the socket. They only back up the deadlines callers set on their calls:
# a peer that acknowledges packets but never answers (a hung proxy) needs the deadline.
KEEPALIVE_IDLE_S = 10
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 20_000
CONNECT_TIMEOUT_S = 5.0


# Errors that mean "the database is not there right now" (the connection broke, the server
# restarts or turns sessions away), as opposed to "it refused this statement". asyncpg raises
# InternalClientError when the server ends a session while the client is mid-call.
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)
# Any database failure a background loop logs and retries after.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_AWAY, asyncpg.PostgresError)


class DatabaseStalled(TimeoutError):
    """A database call missed its deadline; its connection was dropped."""


def set_keepalive(conn: asyncpg.Connection) -> None:
    """Turn on TCP keepalive (and a user timeout, where the system has one) for `conn`."""
    transport = getattr(conn, "_transport", None)  # asyncpg keeps it private
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket cannot lose its peer silently
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
            ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:
        _LOGGER.warning("could not set TCP keepalive on a database connection: %s", exc)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Set up the codecs of one connection (used as a pool's `init`)."""
    set_keepalive(conn)
    # Binary format (a version byte, then the JSON text) so COPY can carry jsonb too.
    await conn.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, separators=(",", ":"), default=str).encode()


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def connect(dsn: str, *, deadline_s: float | None = None, **kw: Any) -> asyncpg.Connection:
    """One connection with the store's codecs.

    With `deadline_s`, connecting and setting up must finish within it (DatabaseStalled
    otherwise; nothing is left open).
    """
    if deadline_s is None:
        conn = await asyncpg.connect(dsn, **kw)
        try:
            await init_connection(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn
    kw.setdefault("timeout", deadline_s)
    conn = None
    try:
        async with asyncio.timeout(deadline_s):
            conn = await asyncpg.connect(dsn, **kw)
            await init_connection(conn)
    except TimeoutError:
        if conn is not None:
            conn.terminate()
        raise DatabaseStalled(f"connecting took longer than {deadline_s:g} s") from None
    except BaseException:
        if conn is not None:
            conn.terminate()
        raise
    return conn


async def create_pool(dsn: str, **kw: Any) -> asyncpg.Pool:
    """A pool whose connections carry the store's codecs; extra keywords go to asyncpg."""
    user_init = kw.pop("init", None)

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        if user_init is not None:
            await user_init(conn)

    kw.setdefault("min_size", 1)
    kw.setdefault("max_size", 10)
    pool = await asyncpg.create_pool(dsn, init=init, **kw)
    assert pool is not None
    return pool


@contextlib.asynccontextmanager
async def within(conn: asyncpg.Connection, deadline_s: float) -> AsyncIterator[None]:
    """Run the block's calls on `conn` within `deadline_s`, or drop the connection.

    A call that misses the deadline may be stuck on a connection that will never answer:
    the connection is terminated (a pool then replaces it) and DatabaseStalled raised.
    """
    try:
        async with asyncio.timeout(deadline_s):
            yield
    except TimeoutError:
        conn.terminate()
        raise DatabaseStalled(f"no answer from the database within {deadline_s:.1f} s") from None


@contextlib.asynccontextmanager
async def acquire(
    pool: asyncpg.Pool, deadline_s: float, *, check_s: float | None = 2.0
) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection whose calls in the block must finish within `deadline_s`.

    With `check_s`, the connection must first answer a ping that fast: an idle
    connection may have died silently, and a long deadline should not be spent
    finding that out. One that does not answer is dropped, with every connection the
    pool made before it (they likely share its fate), and a fresh one is tried.
    """
    for attempt in range(2):
        try:
            conn = await pool.acquire(timeout=deadline_s)
        except TimeoutError:
            raise DatabaseStalled(f"no database connection within {deadline_s:.1f} s") from None
        if check_s is None:
            break
        try:
            async with within(conn, check_s):
                await conn.execute("SELECT 1")
            break
        except DatabaseStalled:
            await _release(pool, conn, deadline_s)
            if attempt:
                raise
            _LOGGER.warning("a pooled database connection did not answer: reconnecting the pool")
            await pool.expire_connections()
        except BaseException:
            await _release(pool, conn, deadline_s)
            raise
    try:
        async with within(conn, deadline_s):
            yield conn
    finally:
        await _release(pool, conn, deadline_s)


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection, deadline_s: float) -> None:
    # A terminated connection is returned at once; a live one is reset, within a deadline.
    try:
        await pool.release(conn, timeout=deadline_s)
    except DATABASE_ERRORS as exc:
        _LOGGER.warning("a database connection could not be reset and was dropped: %s", exc)


async def backend_identity(conn: asyncpg.Connection) -> tuple[int, object]:
    """(pid, start time) of the server process behind `conn`, to end it later if it hangs."""
    row = await conn.fetchrow(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    assert row is not None
    return row[0], row[1]


async def end_backend(conn: asyncpg.Connection, backend: tuple[int, object], wait_s: float) -> None:
    """End the server process of a connection given up on, so that nothing it still holds
    (a half-received COPY, a transaction about to commit) can land after a retry; waits up
    to `wait_s` for it to be gone. The start time guards against a reused pid.
    """
    pid, started = backend
    await conn.execute(
        """
        SELECT pg_terminate_backend(pid, $3) FROM pg_stat_activity
        WHERE pid = $1 AND backend_start = $2 AND usename = current_user
        """,
        pid,
        started,
        int(wait_s * 1000),
    )


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


async def ping(conn: asyncpg.Connection) -> None:
    """A round trip to the server: raises when the connection no longer answers."""
    await conn.fetchval("SELECT 1")


# Tables a bulk load may ask to have their statistics refreshed right away.
_ANALYZABLE = frozenset({"access_events", "presence_stays"})


async def vacuum_analyze(conn: asyncpg.Connection, table: str) -> None:
    """VACUUM ANALYZE a table after a bulk load, so the planner sees its real size."""
    if table not in _ANALYZABLE:
        raise ValueError(f"not a table to analyze: {table!r}")
    await conn.execute(f"VACUUM ANALYZE {table}")
