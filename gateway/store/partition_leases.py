"""Partition leases of gateway workers (issue 14): rows with an expiry on the database's clock.

All times are PostgreSQL's `now()`, so workers on hosts with skewed clocks agree on who
holds what. A lease is only ever taken when free or expired, in one statement, so two
workers racing for a partition cannot both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


class PartitionCountMismatch(Exception):
    """The worker's partition count differs from the one recorded for the campus."""

    def __init__(self, recorded: int, configured: int) -> None:
        super().__init__(recorded, configured)
        self.recorded = recorded
        self.configured = configured


class WorkerIdInUse(Exception):
    """A live worker of another process already registered this worker id."""

    def __init__(self, worker: str, host: str, pid: int) -> None:
        super().__init__(worker, host, pid)
        self.worker, self.host, self.pid = worker, host, pid


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    worker: str
    expires_at: datetime


async def record_partitions(conn: asyncpg.Connection, partitions: int) -> int:
    """Record the campus's partition count on first use; raise if it differs from the one
    recorded. Returns the recorded count."""
    await conn.execute(
        "INSERT INTO gateway_partitioning (partitions) VALUES ($1) ON CONFLICT DO NOTHING",
        partitions,
    )
    recorded: int = await conn.fetchval("SELECT partitions FROM gateway_partitioning")
    if recorded != partitions:
        raise PartitionCountMismatch(recorded, partitions)
    return recorded


async def register_worker(
    conn: asyncpg.Connection,
    worker: str,
    instance: uuid.UUID,
    host: str,
    pid: int,
    ttl_s: float,
) -> None:
    """Register (or renew) this process as a live worker; refuse an id a live other holds."""
    row = await conn.fetchrow(
        """
        INSERT INTO gateway_workers (worker, instance, host, pid, expires_at)
        VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
        ON CONFLICT (worker) DO UPDATE
            SET instance = EXCLUDED.instance, host = EXCLUDED.host, pid = EXCLUDED.pid,
                started_at = CASE WHEN gateway_workers.instance = EXCLUDED.instance
                                  THEN gateway_workers.started_at ELSE now() END,
                expires_at = EXCLUDED.expires_at
            WHERE gateway_workers.instance = EXCLUDED.instance
               OR gateway_workers.expires_at < now()
        RETURNING worker
        """,
        worker,
        instance,
        host,
        pid,
        ttl_s,
    )
    if row is None:
        other = await conn.fetchrow(
            "SELECT host, pid FROM gateway_workers WHERE worker = $1", worker
        )
        raise WorkerIdInUse(worker, other["host"] if other else "?", other["pid"] if other else 0)


async def live_workers(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT worker FROM gateway_workers WHERE expires_at >= now() ORDER BY worker"
    )
    return [r["worker"] for r in rows]


async def retire_dead_workers(conn: asyncpg.Connection, after_s: float) -> list[str]:
    """Forget workers expired for `after_s`; their ids. (Their expired leases stay: free
    to claim, and renewed by their holder if it was only cut off.)"""
    rows = await conn.fetch(
        """
        DELETE FROM gateway_workers
        WHERE expires_at < now() - make_interval(secs => $1)
        RETURNING worker
        """,
        after_s,
    )
    return [r["worker"] for r in rows]


async def renew_leases(conn: asyncpg.Connection, worker: str, ttl_s: float) -> set[int]:
    """Extend every lease this worker still holds; the partitions it holds.

    A lease that expired but that nobody took is renewed too: the worker kept serving it
    (e.g. through a database outage) and nobody else could have."""
    rows = await conn.fetch(
        """
        UPDATE partition_leases SET expires_at = now() + make_interval(secs => $2)
        WHERE worker = $1
        RETURNING partition
        """,
        worker,
        ttl_s,
    )
    return {r["partition"] for r in rows}


async def free_partitions(conn: asyncpg.Connection, partitions: int) -> set[int]:
    """Partitions nobody holds, or whose lease expired."""
    rows = await conn.fetch(
        "SELECT partition FROM partition_leases WHERE expires_at >= now() AND partition < $1",
        partitions,
    )
    held = {r["partition"] for r in rows}
    return set(range(partitions)) - held


async def claim(conn: asyncpg.Connection, worker: str, wanted: list[int], ttl_s: float) -> set[int]:
    """Take those of `wanted` that are free or expired, atomically each; the ones taken."""
    if not wanted:
        return set()
    try:
        async with conn.transaction():
            # Not for long: a holder hung inside its write is ended by the server
            # (`bound_idle_transactions`); the next tick tries again.
            await conn.execute(
                "SELECT set_config('lock_timeout', $1, true)", str(max(1, int(ttl_s * 250)))
            )
            return await _claim_locking(conn, worker, wanted, ttl_s)
    except asyncpg.LockNotAvailableError:
        return set()


async def _claim_locking(
    conn: asyncpg.Connection, worker: str, wanted: list[int], ttl_s: float
) -> set[int]:
    # Row locks FOR UPDATE first: they wait for a journal write of the holder still under
    # way (`fence`, FOR KEY SHARE), so that a claim commits after that write and the new
    # owner's load of recent decisions sees its rows. (The UPDATE below alone takes FOR NO
    # KEY UPDATE, which KEY SHARE does not block; renewals rely on that.)
    await conn.execute(
        """
        SELECT 1 FROM partition_leases
        WHERE partition = ANY($1::int[]) AND expires_at < now()
        ORDER BY partition
        FOR UPDATE
        """,
        wanted,
    )
    rows = await conn.fetch(
        """
        INSERT INTO partition_leases (partition, worker, expires_at)
        SELECT p, $2, now() + make_interval(secs => $3) FROM unnest($1::int[]) AS p
        ON CONFLICT (partition) DO UPDATE
            SET worker = EXCLUDED.worker, acquired_at = now(), expires_at = EXCLUDED.expires_at
            WHERE partition_leases.expires_at < now()
        RETURNING partition
        """,
        wanted,
        worker,
        ttl_s,
    )
    return {r["partition"] for r in rows}


async def fence(conn: asyncpg.Connection, worker: str, partitions: list[int]) -> set[int]:
    """Of `partitions`, those whose lease this worker still holds, their rows locked FOR KEY
    SHARE until the caller's transaction ends (the journal's write of their rows).

    A lease row that names this worker is ours even if expired: nobody took it, and a claim
    (which locks the row FOR UPDATE) now waits for our commit. Renewals (FOR NO KEY UPDATE)
    do not wait, so a slow journal write never holds up our own lease."""
    if not partitions:
        return set()
    rows = await conn.fetch(
        """
        SELECT partition FROM partition_leases
        WHERE worker = $1 AND partition = ANY($2::int[])
        ORDER BY partition  -- locks in one order everywhere: no deadlock with a claim
        FOR KEY SHARE
        """,
        worker,
        partitions,
    )
    return {r["partition"] for r in rows}


async def bound_idle_transactions(conn: asyncpg.Connection, seconds: float) -> None:
    """End this session if it ever idles in a transaction longer than `seconds`: a writer
    that hangs (a stopped process, a host gone quiet) between its fence and its commit would
    otherwise keep its lease rows locked, and every claim of them waiting."""
    await conn.execute(
        "SELECT set_config('idle_in_transaction_session_timeout', $1, false)",
        str(max(1, int(seconds * 1000))),
    )


async def release(conn: asyncpg.Connection, worker: str, partitions: list[int]) -> None:
    """Give up leases at once (a clean stop, or over the fair share): others take them."""
    await conn.execute(
        """
        DELETE FROM partition_leases WHERE partition IN (
            SELECT partition FROM partition_leases
            WHERE worker = $1 AND partition = ANY($2::int[])
            ORDER BY partition FOR UPDATE  -- the fence's lock order
        )
        """,
        worker,
        partitions,
    )


async def deregister_worker(conn: asyncpg.Connection, worker: str, instance: uuid.UUID) -> None:
    await conn.execute(
        """
        DELETE FROM partition_leases WHERE partition IN (
            SELECT partition FROM partition_leases WHERE worker = $1
            ORDER BY partition FOR UPDATE  -- the fence's lock order
        )
        """,
        worker,
    )
    await conn.execute(
        "DELETE FROM gateway_workers WHERE worker = $1 AND instance = $2", worker, instance
    )


async def leases(conn: asyncpg.Connection) -> list[Lease]:
    """Every lease, for operators (`/readyz`, tests)."""
    rows = await conn.fetch(
        "SELECT partition, worker, expires_at FROM partition_leases ORDER BY partition"
    )
    return [Lease(r["partition"], r["worker"], r["expires_at"]) for r in rows]


async def live_holders(conn: asyncpg.Connection) -> dict[int, str]:
    """partition -> worker, for every unexpired lease (whether the campus is balanced)."""
    rows = await conn.fetch(
        "SELECT partition, worker FROM partition_leases WHERE expires_at >= now()"
    )
    return {r["partition"]: r["worker"] for r in rows}
