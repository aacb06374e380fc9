"""Campus jobs on a clock: periodic (every N seconds) or daily at a campus-local time.

One task per job. A job that fails is logged and counted and runs again at its
next time: one bad night never stops the next day's report or purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_LOGGER = logging.getLogger(__name__)

# A daily job re-reads the clock at least this often, so a clock step cannot delay it long.
_MAX_SLEEP_S = 60.0


@dataclass(frozen=True, slots=True)
class Job:
    """`run(now)` every `every_s` seconds, or once a day at `daily_at` (campus time).

    `catch_up(last_due)`, for a daily job, runs once at start with the latest time the
    job was due, so a run missed while the server was down is made up (the job decides
    whether anything was missed).
    """

    name: str
    run: Callable[[datetime], Awaitable[object]]
    every_s: float | None = None
    daily_at: time | None = None
    catch_up: Callable[[datetime], Awaitable[object]] | None = None

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.daily_at is None):
            raise ValueError(f"job {self.name!r}: give exactly one of every_s or daily_at")


def next_daily(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first moment strictly after `after` whose campus-local time is `at` (UTC)."""
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate.astimezone(UTC)


def previous_daily(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest moment at or before `now` whose campus-local time is `at` (UTC)."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate > local:
        candidate = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=tz)
    return candidate.astimezone(UTC)


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0
    last_run: datetime | None = None
    last_error: str | None = None


@dataclass
class Scheduler:
    """Runs `jobs` until stopped; `run_now(name)` runs one at once (e.g. on demand)."""

    jobs: list[Job]
    tz: ZoneInfo
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stats: dict[str, JobStats] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        for job in self.jobs:
            self.stats.setdefault(job.name, JobStats())
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job-{job.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def run_now(self, name: str) -> object:
        job = next((j for j in self.jobs if j.name == name), None)
        if job is None:
            raise KeyError(f"no job {name!r}; jobs: {', '.join(j.name for j in self.jobs)}")
        return await self._run(job)

    async def _run(self, job: Job, *, catching_up: bool = False) -> object:
        stats = self.stats.setdefault(job.name, JobStats())
        now = self.clock()
        stats.runs += 1
        stats.last_run = now
        try:
            if catching_up:
                assert job.catch_up is not None and job.daily_at is not None
                result = await job.catch_up(previous_daily(now, job.daily_at, self.tz))
            else:
                result = await job.run(now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            _LOGGER.exception("job %s failed; it runs again at its next time", job.name)
            return None
        _LOGGER.info("job %s done: %s", job.name, result)
        return result

    async def _loop(self, job: Job) -> None:
        if job.every_s is not None:
            while True:
                await self._run(job)
                await asyncio.sleep(job.every_s)
        assert job.daily_at is not None
        if job.catch_up is not None:
            await self._run(job, catching_up=True)
        due = next_daily(self.clock(), job.daily_at, self.tz)
        while True:
            wait = (due - self.clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, _MAX_SLEEP_S))
                continue
            await self._run(job)
            due = next_daily(max(self.clock(), due), job.daily_at, self.tz)
