"""Head counts per zone from admitted passages; never below zero."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.events import Direction


class Occupancy:
    """How many people are in each zone, as far as admitted passages tell."""

    __slots__ = ("_counts",)

    def __init__(self, seed: Mapping[str, int] | None = None) -> None:
        self._counts: dict[str, int] = {}
        for zone_id, count in (seed or {}).items():
            self.set(zone_id, count)

    def count(self, zone_id: str) -> int:
        return self._counts.get(zone_id, 0)

    def passed(self, zone_id: str, direction: Direction) -> int:
        """Record one admitted passage and return the zone's new count.

        Leaving an empty zone keeps it at zero (someone entered unseen, e.g. tailgating).
        """
        current = self._counts.get(zone_id, 0)
        current = current + 1 if direction is Direction.IN else max(current - 1, 0)
        self._counts[zone_id] = current
        return current

    def set(self, zone_id: str, count: int) -> None:
        """Set a zone's count, e.g. after a guard's head count; negatives become zero."""
        self._counts[zone_id] = max(int(count), 0)

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)
