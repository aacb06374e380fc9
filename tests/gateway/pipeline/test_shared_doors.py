"""The door desk on zone counts shared through a real database (SharedOccupancy).

The real Ingest and DoorDesk of tests/gateway/pipeline/door_rig.py, with the shared
counts of gateway/pipeline/shared_occupancy.py on a fresh PostgreSQL database: the lab
has a capacity of one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from door_rig import EXIT, LAB, RESIDENT, STRANGER, DoorRig

from gateway.pipeline.shared_occupancy import SharedOccupancy
from gateway.store.db import connect


@pytest.fixture
async def rig(fresh_db: str) -> AsyncIterator[DoorRig]:
    rig = DoorRig(shared_dsn=fresh_db)
    await rig.start_shared()
    yield rig
    assert rig.shared is not None
    await rig.shared.stop()


async def decide(rig: DoorRig, card_uid: str) -> str:
    """One entry at the lab, decided and committed; its answer."""
    event_id = rig.card(LAB, card_uid, direction="in")
    await rig.desk.finish_claims()
    rig.journal.commit()
    (answer,) = rig.answers(LAB, event_id)
    return answer


async def stored_count(dsn: str, shared: SharedOccupancy) -> int:
    """The lab's count in the store once the passages queued behind decisions are written."""
    for _ in range(100):
        if not shared._queue:
            break
        await asyncio.sleep(0.05)
    conn = await connect(dsn)
    try:
        return int(await conn.fetchval("SELECT inside FROM zone_occupancy WHERE zone_id = 'lab'"))
    finally:
        await conn.close()


async def test_a_double_swipe_at_a_full_zone_admits_and_keeps_the_place(fresh_db, rig) -> None:
    """Someone inside holds a place: swiping in again is decided without counting them
    twice (admitted), and their place is not given back."""
    assert await decide(rig, RESIDENT) == "admit/ok"  # the lab is full now
    assert await decide(rig, RESIDENT) == "admit/ok"
    assert rig.shared is not None
    assert await stored_count(fresh_db, rig.shared) == 1
    assert await decide(rig, STRANGER) == "deny/zone_full"
    assert await stored_count(fresh_db, rig.shared) == 1


async def test_a_claim_does_not_wait_for_a_busy_connection_past_its_deadline(fresh_db, rig) -> None:
    """The background holds the connection (a flush or a refresh on a slow database): a
    claim gives up on it within its deadline, and the card is decided on the worker's own
    count; the connection is not dropped for that."""
    shared = rig.shared
    assert shared is not None
    async with shared._lock:  # held until the card is decided
        event_id = rig.card(LAB, RESIDENT, direction="in")
        await asyncio.wait_for(rig.desk.finish_claims(), 10)
        rig.journal.commit()
        assert rig.answers(LAB, event_id) == ["admit/ok"]
        assert shared.lock_timeouts == 1
        assert shared.connected
    # Its passage is written behind it, so the shared count has it.
    assert await stored_count(fresh_db, shared) == 1
    assert await decide(rig, STRANGER) == "deny/zone_full"


async def test_queued_passages_go_with_the_next_claim(fresh_db, rig) -> None:
    """An exit queued behind its decision is written with the next claim, before it: the
    exit frees the place the claim takes."""
    shared = rig.shared
    assert shared is not None
    assert await decide(rig, RESIDENT) == "admit/ok"
    background = shared._task
    assert background is not None
    background.cancel()  # only the claim path writes now
    with contextlib.suppress(asyncio.CancelledError):
        await background
    rig.card(LAB, RESIDENT, direction="out")
    rig.journal.commit()
    assert len(shared._queue) == 1
    assert await decide(rig, STRANGER) == "admit/ok"
    assert not shared._queue
    assert await stored_count(fresh_db, shared) == 1


async def test_cards_being_claimed_are_let_go_with_their_devices(rig) -> None:
    """A partition handed over: the cards of its devices whose places are being claimed
    are waited for (finish_claims) or let go (forget), never decided after."""
    shared = rig.shared
    assert shared is not None
    async with shared._lock:  # the claim stays under way
        event_id = rig.card(LAB, RESIDENT, direction="in")
        await asyncio.wait_for(rig.desk.finish_claims({EXIT}), 1)  # none of these devices
        assert rig.desk.forget({LAB}) == 1
    await rig.desk.finish_claims()
    rig.journal.commit()
    assert rig.answers(LAB, event_id) == []
    assert rig.journal.records == []
    assert rig.acked(event_id) == 0
