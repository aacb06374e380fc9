"""The journal against a real PostgreSQL: refused items are set aside, the doors still get answers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from gateway.domain.alerts import Alert, AlertKind, AlertStatus, Severity
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.metrics import Counters
from gateway.pipeline.journal import AlertChange, Journal
from gateway.pipeline.lease_fence import LeaseFence
from gateway.store import alerts as alert_store
from gateway.store import partition_leases as leases
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations


@pytest.fixture
async def journal_dsn(database_factory) -> str:
    dsn = database_factory("journal")
    await apply_migrations(dsn)
    return dsn


def record(event_id: str, **detail: object) -> AccessRecord:
    now = datetime.now(UTC)
    return AccessRecord(
        device_id="dev-1",
        event_id=event_id,
        type=EventType.CARD,
        device_ts=now,
        received_at=now,
        verdict=Verdict.DENY,
        reason=Reason.UNKNOWN_CARD,
        decided_at=now,
        detail=dict(detail),
    )


async def logged(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r[0] for r in await conn.fetch("SELECT event_id FROM access_events ORDER BY event_id")
        ]
    finally:
        await conn.close()


async def test_a_refused_item_is_set_aside_and_the_rest_goes_on(journal_dsn):
    journal = Journal(journal_dsn)
    journal.start()
    answered: list[str] = []
    batch = journal.current()
    batch.records += [
        record("e1"),
        record("e2", reading=float("nan")),
        record("e3"),
    ]  # NaN: not JSON
    batch.after.append(lambda: answered.append("published"))
    journal.kick()
    await journal.drain()
    next_batch = journal.current()
    next_batch.records.append(record("e4"))
    next_batch.after.append(lambda: answered.append("next"))
    journal.kick()
    await journal.drain()
    await journal.stop()
    assert answered == ["published", "next"]
    assert await logged(journal_dsn) == ["e1", "e3", "e4"]
    assert journal.dropped == 1


async def test_resolving_an_alert_someone_already_resolved_does_not_stall(journal_dsn):
    alert = Alert(
        uuid.uuid4().hex, AlertKind.DEVICE_OFFLINE, datetime.now(UTC), Severity.HIGH, device="dev-1"
    )
    conn = await connect(journal_dsn)
    try:
        await alert_store.insert_alerts(conn, [alert])
        await alert_store.set_alert_status(
            conn, alert.id, AlertStatus.RESOLVED, "guard-1", "fixed the cable"
        )
    finally:
        await conn.close()
    journal = Journal(journal_dsn)
    journal.start()
    answered: list[str] = []
    batch = journal.current()
    batch.alert_changes.append(
        AlertChange(alert.id, AlertStatus.RESOLVED, "gateway", "device back online")
    )
    batch.records.append(record("e5"))
    batch.after.append(lambda: answered.append("published"))
    journal.kick()
    await journal.drain()
    await journal.stop()
    assert answered == ["published"]
    assert await logged(journal_dsn) == ["e5"]
    assert journal.dropped == 0


async def test_a_decision_whose_row_is_refused_is_never_published(journal_dsn):
    """Issue #10 point 4: the COPY cannot encode a time before year 1 in UTC (OverflowError);
    the row is set aside, its decision is held back, and `logged` counts only rows written."""
    counters = Counters()
    journal = Journal(journal_dsn, counters=counters)
    journal.start()
    out: list[str] = []
    admitted = record("ok-1")
    unwritable = replace(
        record("bad-1"), device_ts=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    )
    batch = journal.current()
    batch.records += [admitted, unwritable]
    batch.follow(
        lambda: out.append("sent ok-1"), needs=(admitted,), refused=lambda: out.append("held ok-1")
    )
    batch.follow(
        lambda: out.append("sent bad-1"),
        needs=(unwritable,),
        refused=lambda: out.append("held bad-1"),
    )
    batch.after.append(lambda: out.append("plain follow-up"))
    journal.kick()
    await journal.drain()
    await journal.stop()
    assert out == ["sent ok-1", "held bad-1", "plain follow-up"]
    assert await logged(journal_dsn) == ["ok-1"]
    assert (journal.written, journal.dropped) == (1, 1)
    assert counters.logged == 1
    assert counters.rejected_by_cause == {"journal_refused": 1}


async def test_a_fenced_write_leaves_out_the_rows_of_partitions_another_worker_holds(
    journal_dsn,
):
    """Issue 14: a worker that lost a partition's lease writes nothing of that partition
    and neither answers nor acknowledges its events; the new owner decides them."""
    conn = await connect(journal_dsn)
    try:
        assert await leases.claim(conn, "worker-a", [0], 30) == {0}
        assert await leases.claim(conn, "worker-b", [1], 30) == {1}
    finally:
        await conn.close()
    counters = Counters()
    journal = Journal(journal_dsn, counters=counters)
    partition = {"dev-a": 0, "dev-b": 1}
    journal.fence = LeaseFence("worker-a", 2, 30.0, partition.get)
    journal.start()
    outcome: dict[str, str] = {}
    batch = journal.current()
    ours = replace(record("e-ours"), device_id="dev-a")
    lost = replace(record("e-lost"), device_id="dev-b")
    unknown = replace(record("e-unknown"), device_id="dev-unknown")  # not in the roster
    batch.records += [ours, lost, unknown]
    for item in (ours, lost, unknown):
        batch.follow(
            lambda e=item.event_id: outcome.__setitem__(e, "sent"),
            needs=(item,),
            refused=lambda e=item.event_id: outcome.__setitem__(e, "refused"),
            fenced=lambda e=item.event_id: outcome.__setitem__(e, "fenced"),
        )
    journal.kick()
    await journal.drain()
    await journal.stop()
    assert await logged(journal_dsn) == ["e-ours", "e-unknown"]
    assert outcome == {"e-ours": "sent", "e-lost": "fenced", "e-unknown": "sent"}
    assert journal.fenced == counters.fenced == 1
    assert journal.written == counters.logged == 2
