"""Recognising repeated events: a device's `event_id` is decided once."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from devices.transports.mqtt import Message
from gateway.domain.decisions import Decision

EventKey = tuple[str, str]  # (device_id, event_id)


@dataclass
class InFlight:
    """An event being handled: duplicates that arrive meanwhile wait for its outcome."""

    duplicates: list[Message] = field(default_factory=list)


class SeenEvents:
    """Events already handled, newest last, bounded; final decisions kept to answer duplicates."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._done: OrderedDict[EventKey, Decision | None] = OrderedDict()
        self._in_flight: dict[EventKey, InFlight] = {}

    def __len__(self) -> int:
        return len(self._done)

    def lookup(self, key: EventKey) -> tuple[bool, Decision | None, InFlight | None]:
        """(seen, its final decision if any, its in-flight entry if still being handled)."""
        flight = self._in_flight.get(key)
        if flight is not None:
            return True, None, flight
        if key in self._done:
            return True, self._done[key], None
        return False, None, None

    def begin(self, key: EventKey) -> InFlight:
        flight = InFlight()
        self._in_flight[key] = flight
        return flight

    def finish(self, key: EventKey, decision: Decision | None) -> InFlight | None:
        """Mark an event handled (after its record is durable); returns its waiting duplicates."""
        flight = self._in_flight.pop(key, None)
        self.remember(key, decision)
        return flight

    def remember(self, key: EventKey, decision: Decision | None) -> None:
        self._done[key] = decision
        self._done.move_to_end(key)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)
