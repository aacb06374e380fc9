"""Shared zone counts in the store: claims under concurrency, exits, reconciliation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.store import zone_counts
from gateway.store.db import connect

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def test_concurrent_claims_take_exactly_the_capacity(fresh_db, conn) -> None:
    await zone_counts.track(conn, ["z"])
    conns = [await connect(fresh_db) for _ in range(12)]
    try:

        async def claim(n: int) -> zone_counts.Claim | None:
            return await zone_counts.claim(conns[n], "z", f"P{n}", 4, NOW, enforce=True)

        claims = await asyncio.gather(*(claim(n) for n in range(12)))
    finally:
        for c in conns:
            await c.close()
    assert all(c is not None for c in claims)
    taken = [c for c in claims if c and c.taken]
    assert len(taken) == 4
    assert sorted(c.before for c in taken) == [0, 1, 2, 3]
    # Refused claims name the current crossing, not an older snapshot's.
    assert {c.crossing for c in claims if c and not c.taken} == {1}
    assert await zone_counts.counts(conn) == {"z": (4, 1)}


async def test_a_person_inside_keeps_one_place_and_exits_free_it(conn) -> None:
    await zone_counts.track(conn, ["z"])
    first = await zone_counts.claim(conn, "z", "P1", 2, NOW, enforce=True)
    again = await zone_counts.claim(conn, "z", "P1", 2, NOW, enforce=True)
    assert first == zone_counts.Claim(True, 0, 0)
    assert again == zone_counts.Claim(True, 1, 0, held=True)
    assert await zone_counts.leave(conn, "z", "P1") == 0
    assert await zone_counts.leave(conn, "z", "P1") == 0  # no place: nothing freed
    assert await zone_counts.leave(conn, "z", "P9") == 0
    # Alert mode: no limit, the crossing still counted when capacity is reached.
    for n in range(3):
        await zone_counts.claim(conn, "z", f"A{n}", 2, NOW, enforce=False)
    assert await zone_counts.counts(conn) == {"z": (3, 1)}
    assert await zone_counts.claim(conn, "untracked", "P1", 2, NOW, enforce=True) is None


async def test_reconcile_drops_places_the_log_never_confirmed(conn) -> None:
    """A worker died between claiming a place and logging the entry: the place goes once
    older than the grace; a recent place and a recent exit stay."""
    await zone_counts.track(conn, ["z"])
    for person in ("dead", "young", "gone"):
        await zone_counts.claim(conn, "z", person, 10, NOW, enforce=True)
    await zone_counts.leave(conn, "z", "gone")
    await conn.execute(
        "UPDATE zone_presence SET claimed_at = now() - interval '5 minutes' "
        "WHERE person_id IN ('dead', 'gone')"
    )
    assert await zone_counts.reconcile(conn, "z", NOW, 12.0, timedelta(seconds=60)) == (2, 1)
    # The exit's mark stays within the grace (the log may not have the exit yet).
    assert await conn.fetchval("SELECT count(*) FROM zone_presence WHERE person_id = 'gone'") == 1
    assert await zone_counts.counts(conn) == {"z": (1, 0)}


async def test_claims_in_one_round_trip_keep_order_and_never_deadlock(fresh_db, conn) -> None:
    await zone_counts.track(conn, ["a", "b"])

    def req(zone: str, person: str) -> zone_counts.ClaimRequest:
        return zone_counts.ClaimRequest(zone, person, 2, NOW, True)

    results = await zone_counts.claim_many(
        conn, [req("b", "P1"), req("a", "P1"), req("b", "P2"), req("b", "P3"), req("x", "P1")]
    )
    assert [(r.taken, r.before) if r else None for r in results] == [
        (True, 0),
        (True, 0),
        (True, 1),
        (False, 2),
        None,  # not counted
    ]
    # Two workers' batches over the same zones in opposite orders: no deadlock, and
    # together they take exactly what is left.
    await zone_counts.track(conn, ["c", "d"])
    one, two = await connect(fresh_db), await connect(fresh_db)
    try:
        batches = await asyncio.gather(
            zone_counts.claim_many(one, [req(z, f"Q{n}") for n in range(5) for z in "cd"]),
            zone_counts.claim_many(two, [req(z, f"R{n}") for n in range(5) for z in "dc"]),
        )
    finally:
        await one.close()
        await two.close()
    taken = [r for batch in batches for r in batch if r and r.taken]
    assert len(taken) == 4  # capacity 2 in each of c and d
    assert (await zone_counts.counts(conn))["c"] == (2, 1)


async def test_exits_in_one_statement_free_only_places_held(fresh_db, conn) -> None:
    await zone_counts.track(conn, ["a", "b"])
    for zone, person in (("a", "P1"), ("a", "P2"), ("b", "P1"), ("b", "P3")):
        await zone_counts.claim(conn, zone, person, None, NOW, enforce=False)
    await zone_counts.leave_many(
        conn, [("b", "P1"), ("a", "P1"), ("a", "P9"), ("a", "P1"), ("x", "P1")]
    )
    assert await zone_counts.counts(conn) == {"a": (1, 0), "b": (1, 0)}
    # An exit and a claim batch over the same zones in opposite orders: no deadlock.
    one, two = await connect(fresh_db), await connect(fresh_db)
    try:
        await asyncio.gather(
            zone_counts.leave_many(one, [("b", "P3"), ("a", "P2")]),
            zone_counts.claim_many(
                two, [zone_counts.ClaimRequest(z, "Q", None, NOW, False) for z in "ab"]
            ),
        )
    finally:
        await one.close()
        await two.close()
    assert await zone_counts.counts(conn) == {"a": (1, 0), "b": (1, 0)}
