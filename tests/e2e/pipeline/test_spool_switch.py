"""When the journal goes to its spool (issue 13): a database that is gone, not one that is
slow. A write unanswered for a moment makes the journal ping the database on a connection
of its own; only if that goes unanswered too is the write abandoned and its batch spooled
in doubt. Every event is logged exactly once either way (a real PostgreSQL behind a TCP
proxy the test freezes; the write deadline is far longer than the test waits for)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from db_proxy import FaultyProxy

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.pipeline.journal import Journal
from gateway.pipeline.spool import Spool
from gateway.store.migrate import apply_migrations

# A write deadline no test reaches: the switch must come from the ping.
NEVER_S = 600.0
DRAIN_BUDGET_S = 60.0


@pytest.fixture
async def journal_dsn(database_factory) -> str:
    dsn = database_factory("spool_switch")
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


def journal_batch(journal: Journal, event_ids: list[str]) -> asyncio.Event:
    """Add records to the open batch; the event is set once they are durable."""
    done = asyncio.Event()
    batch = journal.current()
    batch.records += [record(eid) for eid in event_ids]
    batch.follow(done.set)
    journal.kick()
    return done


async def log_counts(dsn: str, event_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, count(*) AS n FROM access_events WHERE event_id = ANY($1) GROUP BY 1",
            event_ids,
        )
    finally:
        await conn.close()
    return {r["event_id"]: r["n"] for r in rows}


async def until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_BUDGET_S
    while not check():
        assert loop.time() < deadline, f"{what} within {DRAIN_BUDGET_S} s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("fault", ["frozen", "replies_lost"])
async def test_a_database_gone_is_spooled_after_a_ping_and_logged_once(
    journal_dsn, tmp_path, fault
):
    """Frozen: nothing reaches the server, nor a new connection. Replies lost: the batch
    commits, nobody hears (the ping's open connection neither). Either way the batch goes
    to the spool in doubt without waiting for the write deadline, and the drain logs it
    once: written in the first case, found in the second."""
    spool = Spool(tmp_path / "spool.sqlite3")
    async with FaultyProxy(journal_dsn) as proxy:
        journal = Journal(proxy.dsn, spool=spool, deadline_s=NEVER_S, suspect_s=0.2, probe_s=1.0)
        journal.start()
        try:
            await asyncio.wait_for(journal_batch(journal, ["e0"]).wait(), 30)
            # The ping's connection opens in the background once a write went through.
            await until(lambda: journal._probe is not None, "the ping's connection open")
            if fault == "frozen":
                proxy.black_hole(new_too=True)
            else:
                proxy.drop_replies()
            first = journal_batch(journal, ["e1", "e2"])
            # Durable in the spool: followed up although the write never got an answer
            # (long before its deadline: not a speed bound, the other mechanism's mark).
            await asyncio.wait_for(first.wait(), NEVER_S / 5)
            assert journal.spooling and journal.away == 1 and spool.spooled == 2
            await journal_batch(journal, ["e3"]).wait()  # behind it, to the spool at once
            assert spool.spooled == 3 and journal.away == 1
            proxy.heal()
            await until(lambda: not journal.spooling, "the spool drained")
        finally:
            proxy.heal()
            await journal.stop()
            spool.close()
    ids = ["e0", "e1", "e2", "e3"]
    assert await log_counts(journal_dsn, ids) == dict.fromkeys(ids, 1)


async def test_a_database_slow_under_load_keeps_its_write(journal_dsn, tmp_path):
    """The log is locked by another transaction: the write waits, the ping answers at
    once (the server is there), so the journal does not leave for the spool."""
    spool = Spool(tmp_path / "spool.sqlite3")
    journal = Journal(journal_dsn, spool=spool, deadline_s=NEVER_S, suspect_s=0.05, probe_s=10)
    journal.start()
    locker = await asyncpg.connect(journal_dsn)
    try:
        await asyncio.wait_for(journal_batch(journal, ["s0"]).wait(), 30)
        await until(lambda: journal._probe is not None, "the ping's connection open")
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE access_events IN ACCESS EXCLUSIVE MODE")
        done = journal_batch(journal, ["s1"])
        await until(lambda: journal.probes >= 2, "the slow write pinged")
        assert not done.is_set() and not journal.spooling
        await lock.commit()
        await done.wait()
        assert journal.away == 0 and spool.spooled == 0 and not journal.spooling
    finally:
        await locker.close()
        await journal.stop()
        spool.close()
    assert await log_counts(journal_dsn, ["s0", "s1"]) == {"s0": 1, "s1": 1}
