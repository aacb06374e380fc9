"""Fencing of a partitioned worker's journal writes by its partition leases (issue 14).

A worker whose lease renewals ran late may have lost a partition while a batch of its
decisions was being written: the new owner loads the partition's recent decisions when
it takes it, gets the unacknowledged events again from the broker, and would decide and
log a second time whatever our write adds after that load. So the write checks, in its
own transaction, which of its partitions' leases still name this worker, and locks those
rows (FOR KEY SHARE) until it commits; a claim locks them FOR UPDATE, so it commits after
our write and the new owner's load sees our rows. The items of the partitions no longer
ours are left out: not logged, not acknowledged, not published; their new owner decides
them (docs/architecture.md, "Partitions and leases").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from gateway.domain.partitions import partition_of
from gateway.store import partition_leases as leases


@dataclass(frozen=True, slots=True)
class LeaseFence:
    """Which items of a batch a partitioned worker may still write."""

    worker: str
    partitions: int
    lease_s: float
    # The partition of a device the roster knows; None for one it does not (such events
    # come on the worker's own session, not a partition's: never fenced).
    partition_of_device: Callable[[str], int | None]

    async def fenced(
        self, conn: asyncpg.Connection, items: list[tuple[object, str | None, str | None]]
    ) -> list[object]:
        """Of `items` (item, device id, door id), the ones fenced off: their partition's
        lease is not this worker's any more. Call inside the write's transaction."""
        partition_of_item: dict[int, int] = {}
        for item, device_id, door_id in items:
            n = self._partition(device_id, door_id)
            if n is not None:
                partition_of_item[id(item)] = n
        if not partition_of_item:
            return []
        wanted = sorted(set(partition_of_item.values()))
        held = await leases.fence(conn, self.worker, wanted)
        return [
            item
            for item, _, _ in items
            if id(item) in partition_of_item and partition_of_item[id(item)] not in held
        ]

    def _partition(self, device_id: str | None, door_id: str | None) -> int | None:
        if device_id is not None:
            return self.partition_of_device(device_id)
        if door_id is not None:
            return partition_of(door_id, self.partitions)
        return None

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Once per connection: the server ends it if it hangs inside a write (its lease
        rows locked) for half a lease, so claims of those rows do not wait for ever."""
        await leases.bound_idle_transactions(conn, self.lease_s / 2)
