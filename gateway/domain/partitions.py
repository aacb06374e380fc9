"""Which partition a door belongs to, and how many partitions a worker should own.

Doors (with all their devices) are hashed into a fixed number of partitions; a worker owns
whole partitions, so everything per door (pairing, duplicates, tailgating) lives in one
process. The hash must be the same in every process and every release: BLAKE2b, never
Python's salted `hash()`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

DEFAULT_PARTITIONS = 64


def partition_of(key: str, partitions: int) -> int:
    """The partition of a door id (or of a device id for a device without a door)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def device_partition(door_id: str | None, device_id: str, partitions: int) -> int:
    """A device lives in its door's partition; one without a door in its own."""
    return partition_of(door_id or device_id, partitions)


def fair_share(partitions: int, live_workers: int) -> int:
    """How many partitions each live worker aims at: ceil(partitions / live workers)."""
    return math.ceil(partitions / max(live_workers, 1))


def rebalance(
    owned: Iterable[int],
    free: Iterable[int],
    partitions: int,
    live_workers: int,
    *,
    start: int = 0,
) -> tuple[list[int], list[int]]:
    """(to take, to release) for a worker owning `owned` while `free` are unowned.

    A worker over its fair share releases its highest-numbered extras; one under it takes
    free partitions up to the share, the first at or after `start` (each worker its own,
    e.g. its id's partition, so workers starting together mostly want different ones;
    the lease table settles any race).
    """
    share = fair_share(partitions, live_workers)
    mine = sorted(set(owned))
    if len(mine) > share:
        return [], mine[share:]
    need = share - len(mine)
    candidates = sorted(set(free) - set(mine), key=lambda p: (p - start) % partitions)
    return candidates[:need], []
