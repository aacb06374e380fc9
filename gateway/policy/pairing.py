"""Pairing cards with temperature readings at a door: pure state, explicit time.

A card and a reading at the same door pair when they arrive less than the
window apart, in either order: an item that arrived at `t` can pair during
`[t, t + window)` and expires at `t + window` (half-open, like every other
interval in the policy). A reading bound to a card uid pairs only with that
card; an unbound reading pairs with the oldest waiting card at its door; a card
takes a bound reading with its own uid, else the newest unbound reading. Each
card and each reading pairs at most once.

Nothing is lost silently: a card or reading dropped because its door's queue
was full comes out of the next `expire` like one whose window passed, so the
pipeline still answers the card and still alerts on a fever reading.

Times are monotonic seconds (floats). Card uids must be in canonical form
(gateway.domain.cards.normalize_card_uid). Keys are opaque and hashable.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar, cast

K = TypeVar("K", bound=Hashable)

DEFAULT_MAX_PER_DOOR = 64


@dataclass(frozen=True, slots=True)
class ExpiredReading:
    """A reading that paired with no card within the window."""

    door_id: str
    celsius: float
    card_uid: str | None
    at: float  # when it arrived


class Expired(NamedTuple, Generic[K]):
    """What `expire` released: card keys with no reading, and unpaired readings."""

    cards: list[K]
    readings: list[ExpiredReading]


@dataclass(slots=True, eq=False)
class _Card(Generic[K]):
    key: K
    card_uid: str
    at: float


@dataclass(slots=True, eq=False)
class _Reading:
    celsius: float
    card_uid: str | None
    at: float


@dataclass(slots=True)
class _DoorQueue(Generic[K]):
    # Insertion order is arrival order: the first item is the oldest.
    cards: dict[K, _Card[K]] = field(default_factory=dict)
    readings: dict[int, _Reading] = field(default_factory=dict)


class PairingBook(Generic[K]):
    """Cards waiting for temperatures and temperatures waiting for cards, per door."""

    def __init__(self, window_s: float, *, max_per_door: int = DEFAULT_MAX_PER_DOOR) -> None:
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if max_per_door < 1:
            raise ValueError(f"max_per_door must be at least 1, got {max_per_door!r}")
        self.window_s = float(window_s)
        self.max_per_door = max_per_door
        self.dropped_cards = 0
        self.dropped_readings = 0
        self._doors: dict[str, _DoorQueue[K]] = {}
        self._card_door: dict[K, str] = {}
        # (deadline, seq, door_id, waiting _Card or reading id, is_card); stale entries
        # (paired or dropped items) are skipped when they come up.
        self._deadlines: list[tuple[float, int, str, object, bool]] = []
        self._seq = itertools.count()
        self._evicted_cards: list[K] = []
        self._evicted_readings: list[ExpiredReading] = []
        self._evicted_since: float | None = None

    # -- cards ----------------------------------------------------------------

    def offer_card(self, door_id: str, key: K, card_uid: str, now: float) -> float | None:
        """Pair the card with a waiting reading and return its celsius, or let it wait."""
        celsius = self.take_reading(door_id, card_uid, now)
        if celsius is None:
            self.wait_card(door_id, key, card_uid, now)
        return celsius

    def take_reading(self, door_id: str, card_uid: str, now: float) -> float | None:
        """Consume the reading this card would pair with, without making the card wait.

        A reading bound to this uid wins; else the newest unbound one in the window.
        """
        queue = self._doors.get(door_id)
        if queue is None or not queue.readings:
            return None
        chosen: int | None = None
        for reading_id, reading in reversed(queue.readings.items()):
            if not self._in_window(reading.at, now):
                continue
            if reading.card_uid == card_uid:
                chosen = reading_id
                break
            if reading.card_uid is None and chosen is None:
                chosen = reading_id
        if chosen is None:
            return None
        return queue.readings.pop(chosen).celsius

    def wait_card(self, door_id: str, key: K, card_uid: str, now: float) -> None:
        """Let the card wait for a reading until `now + window`; a key already waiting is kept."""
        if key in self._card_door:
            return
        queue = self._doors.setdefault(door_id, _DoorQueue())
        queue.cards[key] = _Card(key, card_uid, now)
        self._card_door[key] = door_id
        self._push(now + self.window_s, door_id, queue.cards[key], is_card=True)
        if len(queue.cards) > self.max_per_door:
            oldest = next(iter(queue.cards))
            del queue.cards[oldest]
            del self._card_door[oldest]
            self.dropped_cards += 1
            self._evicted_cards.append(oldest)
            self._note_eviction(now)

    def cancel_card(self, key: K) -> bool:
        """Stop waiting for `key` (e.g. decided some other way); False if it was not waiting."""
        door_id = self._card_door.pop(key, None)
        if door_id is None:
            return False
        del self._doors[door_id].cards[key]
        return True

    # -- readings -------------------------------------------------------------

    def offer_temperature(
        self, door_id: str, celsius: float, card_uid: str | None, now: float
    ) -> K | None:
        """Pair the reading with a waiting card and return that card's key, or let it wait.

        A bound reading pairs only with a card of its uid; an unbound one with the
        oldest waiting card at the door.
        """
        queue = self._doors.setdefault(door_id, _DoorQueue())
        for key, card in queue.cards.items():
            if not self._in_window(card.at, now):
                continue
            if card_uid is None or card.card_uid == card_uid:
                del queue.cards[key]
                del self._card_door[key]
                return key
        reading_id = next(self._seq)
        queue.readings[reading_id] = _Reading(celsius, card_uid, now)
        self._push(now + self.window_s, door_id, reading_id, is_card=False)
        if len(queue.readings) > self.max_per_door:
            oldest_id = next(iter(queue.readings))
            oldest = queue.readings.pop(oldest_id)
            self.dropped_readings += 1
            self._evicted_readings.append(
                ExpiredReading(door_id, oldest.celsius, oldest.card_uid, oldest.at)
            )
            self._note_eviction(now)
        return None

    # -- time -------------------------------------------------------------------

    def expire(self, now: float) -> Expired[K]:
        """Release every card and reading whose window has passed by `now`, and any dropped."""
        cards, readings = self._evicted_cards, self._evicted_readings
        self._evicted_cards, self._evicted_readings, self._evicted_since = [], [], None
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, door_id, ident, is_card = heapq.heappop(heap)
            queue = self._doors.get(door_id)
            if queue is None:
                continue
            if is_card:
                card: _Card[K] = ident  # type: ignore[assignment]
                if queue.cards.get(card.key) is card:
                    del queue.cards[card.key]
                    del self._card_door[card.key]
                    cards.append(card.key)
            else:
                reading = queue.readings.pop(cast(int, ident), None)
                if reading is not None:
                    readings.append(
                        ExpiredReading(door_id, reading.celsius, reading.card_uid, reading.at)
                    )
        return Expired(cards, readings)

    def next_deadline(self) -> float | None:
        """The earliest time at which `expire` will release something, or None."""
        heap = self._deadlines
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        deadline = heap[0][0] if heap else None
        if self._evicted_since is not None:
            return self._evicted_since if deadline is None else min(deadline, self._evicted_since)
        return deadline

    def waiting(self, door_id: str) -> tuple[int, int]:
        """(cards, readings) waiting at the door, for metrics and tests."""
        queue = self._doors.get(door_id)
        return (0, 0) if queue is None else (len(queue.cards), len(queue.readings))

    # -- internals --------------------------------------------------------------

    def _in_window(self, at: float, now: float) -> bool:
        # The same sum as the deadline, so pairing and expiry agree to the last bit.
        return now < at + self.window_s and at < now + self.window_s

    def _push(self, deadline: float, door_id: str, ident: object, *, is_card: bool) -> None:
        heapq.heappush(self._deadlines, (deadline, next(self._seq), door_id, ident, is_card))

    def _live(self, entry: tuple[float, int, str, object, bool]) -> bool:
        _, _, door_id, ident, is_card = entry
        queue = self._doors.get(door_id)
        if queue is None:
            return False
        if is_card:
            return queue.cards.get(ident.key) is ident  # type: ignore[attr-defined]
        return ident in queue.readings

    def _note_eviction(self, now: float) -> None:
        if self._evicted_since is None:
            self._evicted_since = now
