"""The campus job that keeps contact tracing's stored stays up to date.

Every few minutes it stores the stays that can no longer change: those that started
more than a max stay (`trace_max_stay_h`) and a settling margin ago. The margin covers
journal batches retried after a short database outage, which reach the log later than
they were stamped. An advisory lock keeps two servers from materializing at once; the
one that finds it taken skips its turn. Traces never wait for the job: what it has not
stored yet they rebuild from the log, with the same result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from gateway.services.scheduler import Job
from gateway.settings import Settings
from gateway.store import tracing_stays as store
from gateway.store.locks import LockKey, try_session_lock

STAYS_EVERY_S = 300.0
SETTLE = timedelta(minutes=15)


def stays_upto(settings: Settings, now: datetime) -> datetime:
    """Stays that started before this are final at `now`."""
    return now - timedelta(hours=settings.trace_max_stay_h) - SETTLE


async def refresh_stays(
    conn: asyncpg.Connection, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Store the stays that are final at `now`; skipped while another run holds the lock."""
    async with try_session_lock(conn, LockKey.PRESENCE_STAYS) as taken:
        if not taken:
            return {"skipped": "another run holds the lock"}
        done = await store.materialize(
            conn, settings.trace_max_stay_h * 3600.0, stays_upto(settings, now)
        )
    return {
        "stays": done.stays,
        "upto": done.upto.isoformat() if done.upto is not None else None,
        "rebuilt": done.rebuilt,
    }


def stays_job(pool: asyncpg.Pool, settings: Settings) -> Job:
    """The periodic stays materialization of a campus served from `pool`."""

    async def run(now: datetime) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await refresh_stays(conn, settings, now)

    return Job("presence_stays", run, every_s=STAYS_EVERY_S)
