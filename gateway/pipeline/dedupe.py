"""Recognising repeated events: a device's `event_id` is decided once."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from gateway.domain.decisions import Decision
from gateway.metrics import Counters
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.publisher import Publisher

EventKey = tuple[str, str]  # (device_id, event_id)


@dataclass
class InFlight:
    """An event being handled: duplicates that arrive meanwhile wait for its outcome."""

    duplicates: list[Arrival] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Answered:
    """How an event was answered: `arrived` is the perf_counter reading when its card event
    reached the gateway (to judge a repeated answer late); `sent_here` means this process
    sent the decision (paho resends it until the broker has it)."""

    decision: Decision | None
    arrived: float | None = None
    sent_here: bool = False


class SeenEvents:
    """Events already handled, newest last, bounded; final decisions kept to answer duplicates."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._done: OrderedDict[EventKey, Answered] = OrderedDict()
        self._in_flight: dict[EventKey, InFlight] = {}

    def __len__(self) -> int:
        return len(self._done)

    def lookup(self, key: EventKey) -> tuple[bool, Decision | None, InFlight | None]:
        """(seen, its final decision if any, its in-flight entry if still being handled)."""
        flight = self._in_flight.get(key)
        if flight is not None:
            return True, None, flight
        if key in self._done:
            return True, self._done[key].decision, None
        return False, None, None

    def answered(self, key: EventKey) -> Answered | None:
        """The answer of a handled event, None while in flight or never seen."""
        return self._done.get(key)

    def begin(self, key: EventKey) -> InFlight:
        flight = InFlight()
        self._in_flight[key] = flight
        return flight

    def finish(
        self, key: EventKey, decision: Decision | None, arrived: float | None = None
    ) -> InFlight | None:
        """Mark an event handled (after its record is durable); returns its waiting duplicates."""
        flight = self._in_flight.pop(key, None)
        self.remember(key, decision, arrived, sent_here=decision is not None)
        return flight

    def abandon(self, key: EventKey) -> None:
        """Forget an event being handled, undecided: another worker decides it now."""
        self._in_flight.pop(key, None)

    def remember(
        self,
        key: EventKey,
        decision: Decision | None,
        arrived: float | None = None,
        *,
        sent_here: bool = False,
    ) -> None:
        self._done[key] = Answered(decision, arrived, sent_here)
        self._done.move_to_end(key)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)


class Duplicates:
    """Answers repeated events: ingest asks on receipt, the desk settles each event once."""

    def __init__(self, seen: SeenEvents, publisher: Publisher, counters: Counters) -> None:
        self.seen = seen
        self._publisher = publisher
        self._counters = counters

    def repeat(self, arrival: Arrival, key: EventKey) -> bool:
        """True if `key` was seen: the repeat is answered now, or once its original is."""
        seen, decision, flight = self.seen.lookup(key)
        if not seen:
            return False
        # A repeat is answered, never logged, so it leaves the device's clock alone.
        self._counters.duplicate += 1
        if flight is not None:
            flight.duplicates.append(arrival)
            return True
        answered = self.seen.answered(key)
        if arrival.redelivered and answered is not None and answered.sent_here:
            # The broker resends what it had not seen acknowledged (a lost connection or
            # a broker restart): the decision went out already and paho resends it until
            # the broker has it, so a second one would open the door twice.
            self._counters.redelivered += 1
        elif decision is not None:
            arrived = answered.arrived if answered else None
            arrival.reply(self._publisher.judged(decision, arrived))
        arrival.ack()
        return True

    def begin(self, key: EventKey) -> None:
        """A new event is being handled: repeats from now on wait for its outcome."""
        self.seen.begin(key)

    def abandon(self, key: EventKey) -> None:
        """The event's partition went to another worker before its record was written: it
        is not answered here (nor its repeats, unacknowledged: the new owner gets them)."""
        self.seen.abandon(key)

    def settle(
        self, key: EventKey, decision: Decision | None, arrived: float | None = None
    ) -> None:
        """The event is handled (its record durable): answer the repeats that waited."""
        flight = self.seen.finish(key, decision, arrived)
        if flight is None:
            return
        for duplicate in flight.duplicates:
            # The broker's redelivery of the message being answered is not a second ask.
            if decision is not None and not duplicate.redelivered:
                duplicate.reply(self._publisher.judged(decision, arrived))
            duplicate.ack()
