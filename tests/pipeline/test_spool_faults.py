"""The journal's local spool at its edges: a drain racing an append, a spool left by a
worker of another name, a spool written in another format, an in-doubt batch without
log rows (issue 13 review)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.pipeline.journal import Journal
from gateway.pipeline.spool import Spool
from gateway.store.migrate import apply_migrations


@pytest.fixture
async def journal_dsn(database_factory) -> str:
    dsn = database_factory("spool_faults")
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


async def test_a_drain_that_meets_an_append_under_way_waits_for_it(journal_dsn, tmp_path):
    """The spool is not empty (an append is under way) but its file holds no row yet:
    the drain looks again instead of failing on the empty read."""
    spool = Spool(tmp_path / "spool.sqlite3")
    journal = Journal(journal_dsn, spool=spool)
    gate, entered = threading.Event(), threading.Event()
    append = spool.file.append

    def held_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait(10)
        return append(*args, **kwargs)

    spool.file.append = held_append  # type: ignore[method-assign]
    try:
        appending = asyncio.create_task(spool.append([([record("e1")], [], [], [], [])], 1))
        assert await asyncio.to_thread(entered.wait, 10)
        assert not spool.empty and spool.file.rows == 0
        assert await journal._drain_some(spool) is False  # raised IndexError before
        gate.set()
        await appending
        while not await journal._drain_some(spool):
            pass
        assert spool.empty and spool.drained == 1
    finally:
        gate.set()
        await journal.stop()
        spool.close()
