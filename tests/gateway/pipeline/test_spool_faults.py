"""The journal's local spool at its edges: a drain racing an append, a spool left by a
worker of another name, a spool written in another format, an in-doubt batch without
log rows (issue 13 review)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import asyncpg
import pytest

from gateway.domain.alerts import Alert, AlertKind, Severity
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.journal import Batch, Journal, _items
from gateway.pipeline.spool import Spool, SpoolFormatError, spool_format
from gateway.store.local_spool import LocalSpool
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


async def _add_person(dsn: str, person_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO people (id, kind, name) VALUES ($1, 'student', $1)", person_id
        )
    finally:
        await conn.close()


async def _history_and_alerts(dsn: str, person_id: str, alert_id: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        history = await conn.fetchval(
            "SELECT count(*) FROM health_history WHERE person_id = $1", person_id
        )
        raised = await conn.fetchval(
            "SELECT count(*) FROM alert_history WHERE alert_id = $1", alert_id
        )
        return int(history), int(raised)
    finally:
        await conn.close()


def _no_records_batch(person_id: str, alert_id: str) -> Batch:
    now = datetime.now(UTC)
    alert = Alert(alert_id, AlertKind.FEVER, now, Severity.HIGH, person=person_id)
    change = HealthRecord(person_id, HealthStatus.FEVER_WATCH, now, set_by="thermal")
    return Batch(alerts=[alert], health=[(change, "gateway")])


async def test_a_spooled_batch_in_doubt_without_log_rows_is_looked_for(journal_dsn, tmp_path):
    """A spooled part of only an alert and a health change whose earlier write committed
    unanswered: the drain finds it by its alert instead of writing the history again."""
    await _add_person(journal_dsn, "p-1")
    batch = _no_records_batch("p-1", "a-1")
    spool = Spool(tmp_path / "spool.sqlite3")
    journal = Journal(journal_dsn, spool=spool)
    try:
        conn = await journal._connection()
        await journal._write(conn, batch)  # the write that committed, its reply lost
        await spool.append([_items(batch)], len(batch), ("unsure", None))
        while not await journal._drain_some(spool):
            pass
        assert spool.drained == len(batch)
    finally:
        await journal.stop()
        spool.close()
    assert await _history_and_alerts(journal_dsn, "p-1", "a-1") == (1, 1)


async def test_a_write_without_log_rows_given_up_on_is_looked_for(journal_dsn):
    """The direct path: a batch of only an alert and a health change whose write committed
    but was given up on (in doubt) is found by its alert, not written again."""
    await _add_person(journal_dsn, "p-2")
    batch = _no_records_batch("p-2", "a-2")
    journal = Journal(journal_dsn)
    try:
        conn = await journal._connection()
        await journal._write(conn, batch)  # committed; the journal heard nothing
        journal._unsure, journal._unsure_backend = batch, None
        await journal._write_once(batch)
    finally:
        await journal.stop()
    assert await _history_and_alerts(journal_dsn, "p-2", "a-2") == (1, 1)


def test_a_spool_written_in_another_format_is_refused_at_start(tmp_path):
    """An upgrade (or rollback) during an outage: the spool's batches were written by a
    gateway whose spooled types differ. The start stops with what to do; nothing is lost."""
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.file.append(b"written by another version", 3)
    spool.file.set_meta("format", "pickle5-0000000000000000")
    spool.file.set_meta("writer", "0.0.9")
    spool.close()
    with pytest.raises(SpoolFormatError) as refused:
        Spool(path)
    message = str(refused.value)
    assert str(path) in message and "3 items" in message and "0.0.9" in message
    assert "pickle5-0000000000000000" in message and spool_format() in message
    assert "Start the version that wrote them" in message and "Do not delete" in message
    file = LocalSpool(path)  # the refusal let the file go, untouched
    try:
        assert file.rows == 1 and file.meta("format") == "pickle5-0000000000000000"
    finally:
        file.close()


def test_an_empty_spool_of_another_format_is_taken_over(tmp_path):
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.file.set_meta("format", "pickle5-0000000000000000")
    spool.close()
    spool = Spool(path)
    try:
        assert spool.file.meta("format") == spool_format()
    finally:
        spool.close()
