"""How far each gateway's local spool has been drained into the store (migration 0020)."""

from __future__ import annotations

import asyncpg


async def drained_through(conn: asyncpg.Connection, spool: str) -> int:
    """The last spool sequence number whose rows are stored (0 before the first drain)."""
    seq = await conn.fetchval("SELECT seq FROM spool_drains WHERE spool = $1", spool)
    return int(seq) if seq is not None else 0


async def mark_drained(conn: asyncpg.Connection, spool: str, seq: int) -> None:
    """Record that the spool's rows up to `seq` are stored; call in the same transaction."""
    await conn.execute(
        """
        INSERT INTO spool_drains (spool, seq) VALUES ($1, $2)
        ON CONFLICT (spool) DO UPDATE SET seq = greatest(spool_drains.seq, EXCLUDED.seq),
                                          drained_at = now()
        """,
        spool,
        seq,
    )
