"""Three partitioned workers on a three-node NATS cluster (issue 14, "Tests"): a worker
SIGKILLed, then the broker node the workers are connected to SIGKILLed, under a steady
load; every card event answered, and in the access log exactly once.

NATS speaks MQTT 3.1.1: the workers and the terminals get every node's URL and move to
the next when theirs dies; each partition's persistent session is replicated by
JetStream, so the worker that takes a partition (or reconnects on another node) gets its
queue of unacknowledged events.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from partition_fixtures import (
    RATE,
    BrokerUnderTest,
    Load,
    Workers,
    leases,
    logged_card_counts,
    partition_of_device,
    plain_doors,
    wait_balanced,
    wait_first_answers,
)

from firmware_sim.campus import Campus
from firmware_sim.fleet import Fleet


@pytest.fixture
def broker(nats_cluster) -> BrokerUnderTest:
    """The partition tests' `broker`, here the three-node NATS cluster."""
    return BrokerUnderTest(list(nats_cluster.urls), protocol="3.1.1")


def _exactly_once(load: Load, missing: list, logged) -> None:
    sent = load.sent
    assert missing == [], f"{len(missing)} of {len(sent)} unanswered: {missing[:5]}"
    twice = {k: n for k, n in logged.items() if n != 1}
    never = {(d, e) for d, e, _ in sent} - set(logged)
    assert twice == {} and never == set(), (twice, list(never)[:5])


def _decided_again_within(fleet: Fleet, load: Load, devices: list[str], since: float) -> float:
    """The longest wait, over `devices`, from `since` to the first answer to an event
    sent after it."""
    gaps = []
    for device in devices:
        after = [fleet[device].decided_at[e] for d, e, t in load.sent if d == device and t > since]
        gaps.append(min(after) - since)
    return max(gaps)


async def test_workers_on_a_nats_cluster_lose_nothing_to_a_worker_or_a_node_dying(
    nats_cluster, workers: Workers, scanner_campus: Campus, partition_dsn: str
) -> None:
    """Costs about 60 s: the cluster (4 s), 3 workers (64 sessions each way), 4 s of
    load, a worker SIGKILLed, 10 s, the first node SIGKILLed, 15 s, drain."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    for n in (1, 2, 3):
        workers.spawn(n)
    held = await wait_balanced(partition_dsn, 3, timeout=120)
    async with Fleet(workers.broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards)
        load.start()
        await asyncio.sleep(4)
        owner = {d: held[partition_of_device(d, facts.device_doors[d])] for d in devices}
        victim = max(
            (1, 2, 3), key=lambda n: sum(w == workers.worker_id(n) for w in owner.values())
        )
        orphaned = [d for d, w in owner.items() if w == workers.worker_id(victim)]
        killed_at = time.perf_counter()
        workers.kill(victim)
        await asyncio.sleep(10)
        taken = await leases(partition_dsn)
        assert workers.worker_id(victim) not in taken.values(), "the dead worker's leases"
        # Every client tries the nodes in order: the first is the one they are all on.
        node_killed_at = time.perf_counter()
        nats_cluster.kill(0)
        await asyncio.sleep(15)
        await load.stop()
        missing = await load.answered(timeout=60)

    logged = await logged_card_counts(partition_dsn, [e for _, e, _ in load.sent])
    _exactly_once(load, missing, logged)
    worker_gap = _decided_again_within(fleet, load, orphaned, killed_at)
    node_gap = _decided_again_within(fleet, load, devices, node_killed_at)
    repeated = sum(fleet[d].repeated_finals for d in devices)
    print(
        f"\nNATS cluster, 3 workers, {RATE} events/s: {len(load.sent)} card events, 0 lost, "
        f"0 logged twice; a worker SIGKILLed: its {len(orphaned)} doors decided again within "
        f"{worker_gap:.2f} s; node 0 SIGKILLed: every door decided again within "
        f"{node_gap:.2f} s; {repeated} repeated final answers (ignored by the terminals)"
    )
