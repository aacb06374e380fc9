"""Head counts per zone from admitted passages; never below zero.

A passage that names its person counts that person in or out (entering twice is one
person inside; leaving without having been seen entering changes nothing), so the
count is who is inside, as the muster list shows it. Passages without a person (and
seeded or guard-set counts) are plain tallies. Entries older than the zone's presence
horizon are dropped by `expire` (gateway/domain/presence.py says why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from gateway.domain.events import Direction


class Occupancy:
    """How many people are in each zone, as far as admitted passages tell."""

    __slots__ = ("_inside", "_tally")

    def __init__(self, seed: Mapping[str, int] | None = None) -> None:
        self._tally: dict[str, int] = {}
        # zone -> person -> when they entered; insertion order is entry order (see expire).
        self._inside: dict[str, dict[str, datetime]] = {}
        for zone_id, count in (seed or {}).items():
            self.set(zone_id, count)

    def count(self, zone_id: str) -> int:
        people = self._inside.get(zone_id)
        return self._tally.get(zone_id, 0) + (len(people) if people else 0)

    def passed(
        self,
        zone_id: str,
        direction: Direction,
        person_id: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Record one admitted passage and return the zone's new count.

        Without a person: leaving an empty zone keeps it at zero (someone entered
        unseen, e.g. tailgating). With a person, `at` is when they entered.
        """
        if person_id is None or at is None:
            current = self._tally.get(zone_id, 0)
            self._tally[zone_id] = current + 1 if direction is Direction.IN else max(current - 1, 0)
            return self.count(zone_id)
        people = self._inside.setdefault(zone_id, {})
        people.pop(person_id, None)  # a re-entry moves to the end: entry order stays sorted
        if direction is Direction.IN:
            people[person_id] = at
        return self.count(zone_id)

    def enter_all(self, entries: Iterable[tuple[str, str, datetime]]) -> None:
        """Seed (zone, person, entered at) rows, oldest first (a restart)."""
        for zone_id, person_id, at in entries:
            self.passed(zone_id, Direction.IN, person_id, at)

    def expire(self, now: datetime, horizon: Callable[[str], timedelta]) -> int:
        """Drop people who entered longer ago than their zone's horizon; how many went."""
        dropped = 0
        for zone_id, people in self._inside.items():
            cutoff = now - horizon(zone_id)
            stale = []
            for person_id, at in people.items():
                if at >= cutoff:
                    break  # entry order: everyone after entered later
                stale.append(person_id)
            for person_id in stale:
                del people[person_id]
            dropped += len(stale)
        return dropped

    def set(self, zone_id: str, count: int) -> None:
        """Set a zone's count, e.g. after a guard's head count; negatives become zero."""
        self._inside.pop(zone_id, None)
        self._tally[zone_id] = max(int(count), 0)

    def snapshot(self) -> dict[str, int]:
        zones = dict.fromkeys([*self._tally, *self._inside], 0)
        return {zone_id: self.count(zone_id) for zone_id in zones}
