"""The partition hash and the balancing rule (gateway/domain/partitions.py)."""

from __future__ import annotations

from collections import Counter

from gateway.domain.partitions import (
    device_partition,
    fair_share,
    partition_of,
    rebalance,
)


def test_the_hash_is_stable_across_processes_and_releases() -> None:
    # Pinned: a change here moves doors to other partitions (and MQTT sessions), which a
    # running campus must never see after an upgrade.
    assert partition_of("gate-main-in", 64) == 27
    assert partition_of("dorm-1-main", 64) == 60
    assert partition_of("gate-main-in", 16) == 27 % 16  # the count only takes a remainder


def test_devices_follow_their_door_and_doorless_ones_their_own_id() -> None:
    assert device_partition("dorm-1-main", "term-a", 64) == device_partition(
        "dorm-1-main", "scan-b", 64
    )
    assert device_partition(None, "cam-x", 64) == partition_of("cam-x", 64)


def test_doors_spread_over_partitions() -> None:
    counts = Counter(partition_of(f"door-{n}", 64) for n in range(6400))
    assert len(counts) == 64
    assert max(counts.values()) < 2 * 100 and min(counts.values()) > 100 // 2


def test_fair_share_is_the_ceiling() -> None:
    assert [fair_share(64, n) for n in (0, 1, 2, 3, 64, 100)] == [64, 64, 32, 22, 1, 1]


def test_a_worker_under_its_share_takes_free_ones_from_its_start() -> None:
    take, give = rebalance([], range(64), 64, 3, start=60)
    assert give == [] and len(take) == 22
    assert take[:4] == [60, 61, 62, 63] and take[4] == 0


def test_a_worker_over_its_share_releases_the_extras() -> None:
    take, give = rebalance(range(40), [], 64, 2)
    assert take == [] and give == list(range(32, 40))


def test_three_workers_converge_to_a_fair_split() -> None:
    owned: dict[str, set[int]] = {"a": set(range(64)), "b": set(), "c": set()}
    for _ in range(5):  # each tick, each worker in turn, as the lease table would see it
        for worker, mine in owned.items():
            held = set().union(*owned.values())
            free = set(range(64)) - held
            take, give = rebalance(mine, free, 64, 3, start=partition_of(worker, 64))
            mine.difference_update(give)
            mine.update(take)
    sizes = sorted(len(m) for m in owned.values())
    assert sizes == [20, 22, 22]
    assert set().union(*owned.values()) == set(range(64))
