"""Connections and pools with the codecs every repository relies on.

Repositories take an asyncpg connection made here (or from a pool made here):
`jsonb` columns then travel as Python dicts and lists.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def init_connection(conn: asyncpg.Connection) -> None:
    """Set up the codecs of one connection (used as a pool's `init`)."""
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


async def connect(dsn: str, **kw: Any) -> asyncpg.Connection:
    """One connection with the store's codecs."""
    conn = await asyncpg.connect(dsn, **kw)
    await init_connection(conn)
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


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
