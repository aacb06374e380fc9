"""The job scheduler: periodic and daily jobs, failures that do not stop a job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.services.scheduler import Job, Scheduler, next_daily, previous_daily

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("after", "at", "tz", "expected"),
    [
        # 07:59 campus time: today 08:00 (00:00 UTC).
        (
            datetime(2026, 11, 27, 23, 59, tzinfo=UTC),
            time(8),
            SHANGHAI,
            datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        ),
        # Exactly 08:00: the next day's, never the same moment twice.
        (
            datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
            time(8),
            SHANGHAI,
            datetime(2026, 11, 29, 0, 0, tzinfo=UTC),
        ),
        # Across a DST change (Berlin springs forward on 2026-03-29): 08:00 local is 06:00 UTC.
        (
            datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
            time(8),
            BERLIN,
            datetime(2026, 3, 29, 6, 0, tzinfo=UTC),
        ),
    ],
)
def test_next_daily(after: datetime, at: time, tz: ZoneInfo, expected: datetime) -> None:
    assert next_daily(after, at, tz) == expected


def test_a_job_needs_exactly_one_timing() -> None:
    async def noop(now: datetime) -> None:
        return None

    with pytest.raises(ValueError, match="exactly one"):
        Job("x", noop)
    with pytest.raises(ValueError, match="exactly one"):
        Job("x", noop, every_s=1, daily_at=time(8))


async def test_a_failing_job_keeps_running_and_is_counted() -> None:
    calls: list[datetime] = []

    async def flaky(now: datetime) -> int:
        calls.append(now)
        if len(calls) % 2:
            raise RuntimeError("database went away")
        return len(calls)

    scheduler = Scheduler([Job("flaky", flaky, every_s=0.01)], SHANGHAI)
    await scheduler.start()
    try:
        for _ in range(500):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    stats = scheduler.stats["flaky"]
    assert len(calls) >= 4
    assert stats.runs == len(calls)
    assert stats.failures == (len(calls) + 1) // 2
    assert stats.last_error is not None and "database went away" in stats.last_error


async def test_a_daily_job_runs_when_its_time_comes_and_on_demand() -> None:
    ran: list[datetime] = []
    clock_now = [datetime(2026, 11, 27, 23, 59, 59, 990000, tzinfo=UTC)]

    async def report(now: datetime) -> str:
        ran.append(now)
        return "sent"

    scheduler = Scheduler(
        [Job("report", report, daily_at=time(8))], SHANGHAI, clock=lambda: clock_now[0]
    )
    await scheduler.start()
    try:
        await asyncio.sleep(0.05)
        assert ran == []  # 10 ms before 08:00 it waits
        clock_now[0] = datetime(2026, 11, 28, 0, 0, 1, tzinfo=UTC)
        # It re-reads the clock after its sleep (at most 10 ms here).
        for _ in range(300):
            if ran:
                break
            await asyncio.sleep(0.01)
        assert ran == [clock_now[0]]
        assert await scheduler.run_now("report") == "sent"
        with pytest.raises(KeyError, match="no job"):
            await scheduler.run_now("nope")
    finally:
        await scheduler.stop()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 09:00 campus time: today's 08:00.
        (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        # Exactly 08:00 counts as due.
        (datetime(2026, 11, 28, 0, 0, tzinfo=UTC), datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        # 02:00 campus time: yesterday's 08:00.
        (datetime(2026, 11, 27, 18, 0, tzinfo=UTC), datetime(2026, 11, 27, 0, 0, tzinfo=UTC)),
    ],
)
def test_previous_daily(now: datetime, expected: datetime) -> None:
    assert previous_daily(now, time(8), SHANGHAI) == expected


async def test_a_daily_job_catches_up_once_at_start_with_its_last_due_time() -> None:
    caught: list[datetime] = []
    ran: list[datetime] = []

    async def catch_up(due: datetime) -> None:
        caught.append(due)

    async def run(now: datetime) -> None:
        ran.append(now)

    now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 11:00 campus time
    scheduler = Scheduler(
        [Job("report", run, daily_at=time(8), catch_up=catch_up)], SHANGHAI, clock=lambda: now
    )
    await scheduler.start()
    try:
        for _ in range(100):
            if caught:
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert caught == [datetime(2026, 11, 28, 0, 0, tzinfo=UTC)]
    assert ran == []  # the next regular run is tomorrow at 08:00
