"""PostgreSQL advisory locks under named keys: one holder per database at a time.

Each key is the ASCII of a four-letter tag ("CG" + two letters), so `pg_locks.objid`
shows which job holds it. Keys taken by SQL in the migrations are listed too, so that no
new key collides with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum

import asyncpg


class LockKey(IntEnum):
    """What an advisory lock guards; the value is the key PostgreSQL sees."""

    MIGRATE = 0x43474D49  # "CGMI": applying migrations (session lock, waits)
    IMPORT = 0x43474950  # "CGIP": one manifest import at a time (transaction lock)
    EPIDEMIC_AREAS = 0x43474541  # "CGEA": listing or moving an area vs. the overlap check
    RETENTION = 0x43475254  # "CGRT": one retention run at a time (try, refuse if held)
    DAILY_REPORTS = 0x43475250  # "CGRP": one scheduled report run at a time (try, skip)
    PRESENCE_STAYS = 0x43475354  # "CGST": one stay materialization at a time (try, skip)
    # "CGAL": the one allowlist publisher per topic prefix (session lock held while it
    # leads, with the prefix's hash as the second key; try, stand by if held)
    ALLOWLISTS = 0x4347414C
    # Taken in SQL, not here: the alert feed's commit order (migration 0007). The access
    # log's partition creation (0003, 0005) locks hashtext('campusgate_access_partition').
    ALERT_FEED = 0x43474146  # "CGAF"


async def lock_for_transaction(conn: asyncpg.Connection, key: LockKey) -> None:
    """Wait for the lock and hold it until the current transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", int(key))


@asynccontextmanager
async def session_lock(conn: asyncpg.Connection, key: LockKey) -> AsyncIterator[None]:
    """Wait for the lock and hold it on this connection for the block (across transactions)."""
    await conn.execute("SELECT pg_advisory_lock($1)", int(key))
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", int(key))


@asynccontextmanager
async def try_session_lock(conn: asyncpg.Connection, key: LockKey) -> AsyncIterator[bool]:
    """Take the lock if free and hold it for the block; yields whether it was taken."""
    taken = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", int(key)))
    try:
        yield taken
    finally:
        if taken:
            await conn.execute("SELECT pg_advisory_unlock($1)", int(key))


async def try_hold(conn: asyncpg.Connection, key: LockKey, scope: str) -> bool:
    """Take the lock for `scope` if free and keep it until this session ends.

    The two-key form (the key, the scope's hash): a lock per scope, apart
    from the one-key locks above. Held by a long-lived connection, it passes to another
    session by itself when the holder's connection dies.
    """
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1::int4, hashtext($2))", int(key), scope)
    )
