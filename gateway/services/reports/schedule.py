"""The daily report job: at CAMPUSGATE_REPORT_TIME (campus time) it reports the day
before, as a liaison expects of a morning report, and sends it.

The run first retries deliveries that failed earlier, then generates the previous
day's scheduled reports that do not exist yet (so a second run, or a second server,
never sends them twice), writes their files and sends them. At start the job
catches up the run last due, when the server was down then and that day saw door
events (a fresh install does not report the days before it existed).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from gateway.domain.reports import Audience
from gateway.services.reports.compute import UnitTree
from gateway.services.reports.service import generate_reports, retry_failed
from gateway.services.scheduler import Job
from gateway.settings import Settings
from gateway.store import reports as store
from gateway.store.locks import LockKey, try_session_lock

_LOGGER = logging.getLogger(__name__)
BY = "schedule"
_ALL = tuple(Audience)


async def run_daily_reports(
    conn: asyncpg.Connection, settings: Settings, now: datetime, *, day: date | None = None
) -> dict[str, Any]:
    """One scheduled run for `day` (default: the campus day before `now`); returns what it did."""
    if day is None:
        day = now.astimezone(settings.tz).date() - timedelta(days=1)
    async with try_session_lock(conn, LockKey.DAILY_REPORTS) as taken:
        if not taken:
            return {"day": day.isoformat(), "skipped": "another run holds the lock"}
        retried = await retry_failed(conn, settings, by=BY, now=now)
        have = {
            (r.org_unit_id, r.audience)
            for r in await store.list_reports(conn, day=day, scheduled=True, limit=10_000)
        }
        tree = UnitTree(await store.org_units(conn))
        made = []
        for audience in _ALL:  # only the (unit, audience) pairs still missing
            units = [u for u in [None, *tree.top_level()] if (u, audience) not in have]
            if not units:
                continue
            made += await generate_reports(
                conn,
                day=day,
                settings=settings,
                by=BY,
                org_units=units,
                audiences=[audience],
                send=True,
                write_files=True,
                scheduled=True,
                now=now,
            )
        return {"day": day.isoformat(), "generated": len(made), "retried": len(retried)}


async def catch_up_daily_reports(
    conn: asyncpg.Connection, settings: Settings, due: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """Make up the run that was due at `due`, if its day had door events (else skip)."""
    day = due.astimezone(settings.tz).date() - timedelta(days=1)
    if not await store.day_has_events(conn, day, settings.tz):
        return {"day": day.isoformat(), "skipped": "no door events that day"}
    return await run_daily_reports(conn, settings, now or datetime.now(UTC), day=day)


def daily_report_job(pool: asyncpg.Pool, settings: Settings) -> Job:
    """The job for gateway/services/jobs.py's campus_jobs."""
    hour, minute = (int(x) for x in settings.report_time.split(":"))

    async def run(now: datetime) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await run_daily_reports(conn, settings, now)

    async def catch_up(due: datetime) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await catch_up_daily_reports(conn, settings, due)

    return Job("daily_reports", run, daily_at=time(hour, minute), catch_up=catch_up)
