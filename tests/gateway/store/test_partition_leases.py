"""Partition leases as a fence for journal writes (issue 14), against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.store import access_log
from gateway.store import partition_leases as leases
from gateway.store.db import DATABASE_ERRORS, connect
from gateway.store.migrate import apply_migrations


@pytest.fixture
async def lease_dsn(database_factory) -> str:
    dsn = database_factory("leases")
    await apply_migrations(dsn)
    return dsn


def card(event_id: str) -> AccessRecord:
    now = datetime.now(UTC)
    return AccessRecord(
        device_id="dev-5",
        event_id=event_id,
        type=EventType.CARD,
        device_ts=now,
        received_at=now,
        verdict=Verdict.DENY,
        reason=Reason.UNKNOWN_CARD,
        decided_at=now,
    )


async def expire(conn: asyncpg.Connection, partition: int) -> None:
    await conn.execute(
        "UPDATE partition_leases SET expires_at = now() - interval '1 second' WHERE partition = $1",
        partition,
    )


async def test_the_fence_passes_only_the_partitions_this_worker_holds(lease_dsn):
    conn = await connect(lease_dsn)
    try:
        assert await leases.claim(conn, "a", [1, 2], 30) == {1, 2}
        assert await leases.claim(conn, "b", [3], 30) == {3}
        await expire(conn, 2)  # late renewals: expired, but nobody took it, so still ours
        async with conn.transaction():
            assert await leases.fence(conn, "a", [1, 2, 3, 4]) == {1, 2}
        assert await leases.claim(conn, "b", [2], 30) == {2}
        async with conn.transaction():
            assert await leases.fence(conn, "a", [1, 2, 3]) == {1}
            assert await leases.fence(conn, "b", [1, 2, 3]) == {2, 3}
    finally:
        await conn.close()


async def test_a_claim_waits_for_the_holders_write_and_then_sees_its_rows(lease_dsn):
    holder, taker = await connect(lease_dsn), await connect(lease_dsn)
    try:
        assert await leases.claim(holder, "a", [5], 30) == {5}
        await expire(holder, 5)
        write = holder.transaction()
        await write.start()
        assert await leases.fence(holder, "a", [5]) == {5}
        await access_log.write_access_records(holder, [card("e-late")])
        claim = asyncio.create_task(leases.claim(taker, "b", [5], 30))
        await asyncio.sleep(0.5)
        # The expired lease is not taken under the write: the claim waits for its commit.
        assert not claim.done()
        await write.commit()
        assert await claim == {5}
        # So the new owner's load of recent decisions, after its claim, has the row.
        recent = await access_log.recent_decisions(
            taker, datetime.now(UTC) - timedelta(hours=1), devices=["dev-5"]
        )
        assert [r[1] for r in recent] == ["e-late"]
        async with holder.transaction():
            assert await leases.fence(holder, "a", [5]) == set()  # later writes: fenced off
    finally:
        await holder.close()
        await taker.close()


async def test_a_writer_hung_inside_its_write_is_ended_so_the_claim_goes_through(lease_dsn):
    holder, taker = await connect(lease_dsn), await connect(lease_dsn)
    try:
        await leases.bound_idle_transactions(holder, 0.5)
        assert await leases.claim(holder, "a", [6], 30) == {6}
        await expire(holder, 6)
        write = holder.transaction()
        await write.start()
        assert await leases.fence(holder, "a", [6]) == {6}
        # The holder hangs here (a stopped process): the server ends its session, and the
        # claim, which gives up on a lock after a quarter lease, gets it on a later try.
        claimed: set[int] = set()
        for _ in range(40):
            claimed = await leases.claim(taker, "b", [6], 4)
            if claimed:
                break
            await asyncio.sleep(0.1)
        assert claimed == {6}
        # The ended session surfaces as whichever error asyncpg meets first.
        with pytest.raises(DATABASE_ERRORS):
            await write.commit()
    finally:
        holder.terminate()
        await taker.close()


async def test_a_claim_does_not_take_a_live_lease_nor_wait_on_its_renewal(lease_dsn):
    holder, taker = await connect(lease_dsn), await connect(lease_dsn)
    try:
        assert await leases.claim(holder, "a", [7], 30) == {7}
        async with holder.transaction():
            await leases.fence(holder, "a", [7])
            # The holder's own renewal is not held up by its write's lock (KEY SHARE).
            renewed = await asyncio.wait_for(leases.renew_leases(taker, "a", 30), 10)
            assert renewed == {7}
        assert await leases.claim(taker, "b", [7], 30) == set()
    finally:
        await holder.close()
        await taker.close()
