"""The journal against PostgreSQL behind a proxy that the test breaks (issue #10, points 1, 6)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import pytest
from db_proxy import FaultyProxy

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.pipeline.journal import Journal
from gateway.store.migrate import apply_migrations

_LOGGER = logging.getLogger(__name__)


@pytest.fixture
async def journal_dsn(database_factory) -> str:
    dsn = database_factory("journal_faults")
    await apply_migrations(dsn)
    return dsn


def record(event_id: str) -> AccessRecord:
    now = datetime.now(UTC)
    return AccessRecord(
        device_id="dev-1",
        event_id=event_id,
        type=EventType.CARD,
        device_ts=now,
        received_at=now,
        verdict=Verdict.ADMIT,
        reason=Reason.OK,
        decided_at=now,
    )


async def logged(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r[0] for r in await conn.fetch("SELECT event_id FROM access_events ORDER BY event_id")
        ]
    finally:
        await conn.close()


async def write(journal: Journal, *event_ids: str, timeout: float = 30.0) -> list[str]:
    """Journal records and wait (bounded) until their follow-up ran."""
    done = asyncio.Event()
    out: list[str] = []
    batch = journal.current()
    records = [record(e) for e in event_ids]
    batch.records += records
    batch.after.append(lambda: (out.append("sent"), done.set()))
    journal.kick()
    await asyncio.wait_for(done.wait(), timeout)
    return out


async def test_a_write_whose_reply_is_lost_is_not_written_twice(journal_dsn):
    """The server commits the COPY but its answer never arrives: the journal gives the
    connection up, and must find the rows already there instead of writing them again."""
    async with FaultyProxy(journal_dsn) as proxy:
        journal = Journal(proxy.dsn)
        journal.start()
        try:
            assert await write(journal, "e1") == ["sent"]
            assert proxy.drop_replies() == 1
            assert await write(journal, "e2", "e3", "e4") == ["sent"]
            assert await write(journal, "e5") == ["sent"]
            assert journal.stalls == 1
        finally:
            proxy.heal()
            await journal.stop()
    assert await logged(journal_dsn) == ["e1", "e2", "e3", "e4", "e5"]


async def test_a_black_holed_write_goes_through_on_a_fresh_connection(journal_dsn):
    stalls: list[tuple[bool, str]] = []
    async with FaultyProxy(journal_dsn) as proxy:
        journal = Journal(proxy.dsn)
        journal.on_stall = lambda stalled, detail: stalls.append((stalled, detail))
        journal.start()
        try:
            assert await write(journal, "e1") == ["sent"]
            proxy.black_hole()
            assert await write(journal, "e2", "e3") == ["sent"]
        finally:
            proxy.heal()
            await journal.stop()
    assert await logged(journal_dsn) == ["e1", "e2", "e3"]
    assert [s for s, _ in stalls] == [True, False]
    assert "within" in stalls[0][1]


async def test_the_journal_is_back_soon_after_the_database(journal_dsn):
    """While the database is away the journal tries again at least every second (it
    waited up to 5 s between tries before), so doors get their decisions soon after.

    The waits are the ones the journal chose (recorded, not timed), so a loaded machine
    cannot make this fail or pass."""
    loop = asyncio.get_running_loop()
    waits: list[float] = []
    enough = asyncio.Event()  # enough tries for a doubling backoff to pass 5 s
    async with FaultyProxy(journal_dsn) as proxy:
        journal = Journal(proxy.dsn)
        stalled = journal._stalled

        def record(pending, exc, backoff):
            waits.append(backoff)
            if len(waits) >= 8:
                enough.set()
            stalled(pending, exc, backoff)

        journal._stalled = record
        journal.start()
        try:
            assert await write(journal, "e1") == ["sent"]
            proxy.cut()
            waiting = asyncio.create_task(write(journal, "e2"))
            await enough.wait()
            assert not waiting.done()
            proxy.accept()
            back_at = loop.time()
            assert await waiting == ["sent"]
            recovered_s = loop.time() - back_at
        finally:
            await journal.stop()
    _LOGGER.warning(
        "%d tries in the outage, waits %s; decided %.2f s after the database returned",
        len(waits),
        waits,
        recovered_s,
    )
    assert max(waits) <= 1.0, waits
    assert await logged(journal_dsn) == ["e1", "e2"]
