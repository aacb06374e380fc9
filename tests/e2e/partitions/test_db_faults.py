"""Partition ownership when PostgreSQL goes away (issue 14, with issue 13's rule that the
database down must not be the doors down)."""

from __future__ import annotations

import asyncio
import time

from db_proxy import FaultyProxy
from partition_fixtures import (
    LEASE_S,
    BrokerUnderTest,
    Load,
    Workers,
    leases,
    logged_card_counts,
    plain_doors,
    wait_balanced,
    wait_first_answers,
)

from firmware_sim.campus import Campus
from firmware_sim.fleet import Fleet


async def settled_log(dsn: str, load: Load, timeout: float = 30) -> dict[tuple[str, str], int]:
    """The access log's count per sent card event, once every one is there (spools drained)."""
    wanted = {(d, e) for d, e, _ in load.sent}
    deadline = time.monotonic() + timeout
    while True:
        logged = await logged_card_counts(dsn, [e for _, e, _ in load.sent])
        if set(logged) >= wanted or time.monotonic() > deadline:
            return dict(logged)
        await asyncio.sleep(0.5)


def partition_session_drops(workers: Workers, n: int) -> int:
    log = workers.log(n).read_text(errors="replace")
    return sum(
        1
        for line in log.splitlines()
        if "lost its connection" in line and f"MQTT {workers.prefix}-p" in line
    )


async def test_a_worker_cut_off_from_the_database_hands_over_without_a_fight(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 35 s: 3 workers, one loses the database under load, then gets it back."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    async with FaultyProxy(partition_dsn) as proxy:
        workers.spawn(1, dsn=proxy.dsn)
        workers.spawn(2)
        workers.spawn(3)
        await wait_balanced(partition_dsn, 3)
        async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
            await wait_first_answers(fleet, devices, facts.resident_cards[0])
            load = Load(fleet, devices, facts.resident_cards)
            load.start()
            await asyncio.sleep(2)
            proxy.cut()  # worker 1 alone loses PostgreSQL
            cut_at = time.perf_counter()
            while True:
                held = await leases(partition_dsn)
                if len(held) == 64 and workers.worker_id(1) not in held.values():
                    break
                assert time.perf_counter() - cut_at < 30, held
                await asyncio.sleep(0.1)
            taken_after = time.perf_counter() - cut_at
            await asyncio.sleep(3)  # a fight over the sessions would show by now
            proxy.accept()  # back: it rejoins and gets its share again
            await wait_balanced(partition_dsn, 3)
            await asyncio.sleep(1)
            await load.stop()
            missing = await load.answered(timeout=30)
            logged = await settled_log(partition_dsn, load)
    assert missing == [], f"{len(missing)} of {len(load.sent)} unanswered"
    never = {(d, e) for d, e, _ in load.sent} - set(logged)
    twice = {k: n for k, n in logged.items() if n != 1}
    assert never == set(), list(never)[:5]
    # The takers' sessions were never taken back: no fight.
    assert partition_session_drops(workers, 2) == 0, workers.tail(2)
    assert partition_session_drops(workers, 3) == 0, workers.tail(3)
    print(
        f"\nworker cut off from PostgreSQL: its partitions taken {taken_after:.2f} s after the "
        f"cut (lease {LEASE_S} s); {len(load.sent)} events, all answered; logged twice: "
        f"{len(twice)}; the takers' sessions never dropped"
    )
    assert twice == {}, twice


async def test_a_full_database_outage_keeps_every_partition_where_it_is(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 45 s: 3 workers, PostgreSQL away for 2 leases under load."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    async with FaultyProxy(partition_dsn) as proxy:
        for n in (1, 2, 3):
            workers.spawn(n, dsn=proxy.dsn)
        before = await wait_balanced(partition_dsn, 3)
        async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
            await wait_first_answers(fleet, devices, facts.resident_cards[0])
            load = Load(fleet, devices, facts.resident_cards)
            load.start()
            await asyncio.sleep(1)
            proxy.cut()
            outage_from = len(load.sent)
            await asyncio.sleep(2 * LEASE_S)
            during = load.sent[outage_from:]
            # Doors kept deciding, each by its partition's owner, through the outage.
            answered = sum(1 for d, e, _ in during if e in fleet[d].decided_at)
            proxy.accept()
            await asyncio.sleep(2 * LEASE_S / 5 + 1)  # a tick or two to renew
            after = await wait_balanced(partition_dsn, 3)
            await load.stop()
            missing = await load.answered(timeout=30)
            logged = await settled_log(partition_dsn, load)
    assert after == before  # nobody dropped or took a partition
    assert missing == []
    assert {(d, e) for d, e, _ in load.sent} == set(logged)
    assert all(n == 1 for n in logged.values())
    for n in (1, 2, 3):
        assert "closing its session" not in workers.log(n).read_text(errors="replace")
    print(
        f"\nfull PostgreSQL outage of {2 * LEASE_S:.0f} s (2 leases): {answered} of "
        f"{len(during)} card events sent during it answered by then; every partition stayed "
        "with its owner; all events logged once after"
    )
