"""PairingBook: timing, binding, FIFO, doors, expiry, bounded memory; properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import ExpiredReading, PairingBook

WINDOW = 15.0
UID_A, UID_B = "04A1B2C3D4", "0A0B0C0D"


def book(max_per_door: int = 64) -> PairingBook:
    return PairingBook(WINDOW, max_per_door=max_per_door)


# card first at t=100, then a reading at 100 + dt
CARD_THEN_READING = {
    "same-instant": (0.0, True),
    "within": (14.999, True),
    "exactly-at-window": (15.0, False),
    "past-window": (15.001, False),
}


@pytest.mark.parametrize(("dt", "pairs"), CARD_THEN_READING.values(), ids=CARD_THEN_READING.keys())
def test_card_then_reading(dt: float, pairs: bool) -> None:
    b = book()
    assert b.offer_card("door-1", "k1", UID_A, 100.0) is None
    assert b.waiting("door-1") == (1, 0)
    key = b.offer_temperature("door-1", 36.6, None, 100.0 + dt)
    assert key == ("k1" if pairs else None)
    assert b.waiting("door-1") == ((0, 0) if pairs else (1, 1))


# a reading first at t=100, then the card at 100 + dt
READING_THEN_CARD = {
    "same-instant": (0.0, 36.6),
    "within": (14.999, 36.6),
    "exactly-at-window": (15.0, None),
    "past-window": (20.0, None),
}


@pytest.mark.parametrize(
    ("dt", "celsius"), READING_THEN_CARD.values(), ids=READING_THEN_CARD.keys()
)
def test_reading_then_card(dt: float, celsius: float | None) -> None:
    b = book()
    assert b.offer_temperature("door-1", 36.6, None, 100.0) is None
    assert b.offer_card("door-1", "k1", UID_A, 100.0 + dt) == celsius


BOUND = {
    # (reading bound to, card offered, pairs)
    "bound-to-this-card": (UID_A, UID_A, True),
    "bound-to-other-card": (UID_B, UID_A, False),
    "unbound": (None, UID_A, True),
}


@pytest.mark.parametrize(("bound", "card", "pairs"), BOUND.values(), ids=BOUND.keys())
def test_bound_reading_after_card(bound, card, pairs) -> None:
    b = book()
    b.offer_card("door-1", "k1", card, 0.0)
    assert b.offer_temperature("door-1", 36.6, bound, 1.0) == ("k1" if pairs else None)


@pytest.mark.parametrize(("bound", "card", "pairs"), BOUND.values(), ids=BOUND.keys())
def test_bound_reading_before_card(bound, card, pairs) -> None:
    b = book()
    b.offer_temperature("door-1", 36.6, bound, 0.0)
    assert b.offer_card("door-1", "k1", card, 1.0) == (36.6 if pairs else None)


def test_bound_reading_skips_older_cards_to_find_its_own() -> None:
    b = book()
    b.offer_card("door-1", "k-a", UID_A, 0.0)
    b.offer_card("door-1", "k-b", UID_B, 1.0)
    assert b.offer_temperature("door-1", 36.6, UID_B, 2.0) == "k-b"
    assert b.offer_temperature("door-1", 36.7, None, 3.0) == "k-a"


def test_unbound_readings_pair_fifo() -> None:
    b = book()
    for i, t in enumerate((0.0, 1.0, 2.0)):
        b.offer_card("door-1", f"k{i}", f"0000000{i}", t)
    paired = [b.offer_temperature("door-1", 36.5 + i / 10, None, 5.0 + i) for i in range(3)]
    assert paired == ["k0", "k1", "k2"]
    assert b.offer_temperature("door-1", 36.9, None, 9.0) is None


def test_unbound_reading_skips_a_card_whose_window_passed() -> None:
    b = book()
    b.offer_card("door-1", "old", UID_A, 0.0)
    b.offer_card("door-1", "new", UID_B, 10.0)
    assert b.offer_temperature("door-1", 36.6, None, 16.0) == "new"
    assert b.expire(16.0).cards == ["old"]


def test_card_takes_the_newest_unbound_reading() -> None:
    b = book()
    b.offer_temperature("door-1", 36.1, None, 0.0)
    b.offer_temperature("door-1", 36.2, None, 1.0)
    assert b.offer_card("door-1", "k1", UID_A, 2.0) == 36.2
    assert b.offer_card("door-1", "k2", UID_B, 3.0) == 36.1


def test_card_prefers_its_bound_reading_over_a_newer_unbound_one() -> None:
    b = book()
    b.offer_temperature("door-1", 36.1, UID_A, 0.0)
    b.offer_temperature("door-1", 36.2, None, 1.0)
    assert b.offer_card("door-1", "k1", UID_A, 2.0) == 36.1


@pytest.mark.parametrize("first", ["card", "reading"])
def test_readings_do_not_cross_doors(first: str) -> None:
    b = book()
    if first == "card":
        b.offer_card("door-1", "k1", UID_A, 0.0)
        assert b.offer_temperature("door-2", 36.6, None, 1.0) is None
    else:
        b.offer_temperature("door-2", 36.6, None, 0.0)
        assert b.offer_card("door-1", "k1", UID_A, 1.0) is None
    assert (b.waiting("door-1"), b.waiting("door-2")) == ((1, 0), (0, 1))


def test_each_reading_and_card_pairs_once() -> None:
    b = book()
    b.offer_temperature("door-1", 36.6, None, 0.0)
    assert b.offer_card("door-1", "k1", UID_A, 1.0) == 36.6
    assert b.offer_card("door-1", "k2", UID_B, 2.0) is None
    assert b.offer_temperature("door-1", 36.7, None, 3.0) == "k2"
    assert b.offer_temperature("door-1", 36.8, None, 4.0) is None


EXPIRY = {
    # now -> (expired card keys, expired readings)
    "before-any": (14.0, [], []),
    "card-at-deadline": (15.0, ["k1"], []),
    "both": (
        17.0,
        ["k1"],
        [ExpiredReading("door-2", 38.4, None, 2.0)],
    ),
}


@pytest.mark.parametrize(("now", "cards", "readings"), EXPIRY.values(), ids=EXPIRY.keys())
def test_expiry_outputs(now: float, cards: list, readings: list) -> None:
    b = book()
    b.offer_card("door-1", "k1", UID_A, 0.0)
    b.offer_temperature("door-2", 38.4, None, 2.0)
    assert b.next_deadline() == 15.0
    assert b.expire(now) == (cards, readings)
    assert b.expire(now) == ([], [])  # released once only


def test_next_deadline_skips_paired_items() -> None:
    b = book()
    assert b.next_deadline() is None
    b.offer_card("door-1", "k1", UID_A, 0.0)
    b.offer_card("door-1", "k2", UID_B, 5.0)
    assert b.next_deadline() == 15.0
    assert b.offer_temperature("door-1", 36.6, None, 6.0) == "k1"
    assert b.next_deadline() == 20.0
    assert b.cancel_card("k2") is True
    assert b.cancel_card("k2") is False
    assert b.next_deadline() is None
    assert b.expire(100.0) == ([], [])


def test_take_reading_does_not_make_the_card_wait() -> None:
    b = book()
    assert b.take_reading("door-1", UID_A, 0.0) is None
    assert b.waiting("door-1") == (0, 0)
    b.offer_temperature("door-1", 36.6, None, 1.0)
    assert b.take_reading("door-1", UID_A, 2.0) == 36.6


def test_a_waiting_key_offered_again_is_kept_once() -> None:
    b = book()
    b.wait_card("door-1", "k1", UID_A, 0.0)
    b.wait_card("door-1", "k1", UID_A, 3.0)
    assert b.waiting("door-1") == (1, 0)
    assert b.expire(15.0).cards == ["k1"]


def test_full_door_drops_oldest_and_reports_it() -> None:
    b = book(max_per_door=2)
    for i in range(3):
        b.offer_card("door-1", f"k{i}", f"0000000{i}", float(i))
    for i in range(3):
        b.offer_temperature("door-2", 39.0 + i, None, float(i))
    assert (b.dropped_cards, b.dropped_readings) == (1, 1)
    assert b.waiting("door-1") == (2, 0)
    assert b.next_deadline() == 2.0  # the drop is due now, not at its window's end
    assert b.expire(2.0) == (["k0"], [ExpiredReading("door-2", 39.0, None, 0.0)])
    assert b.next_deadline() == 16.0


@pytest.mark.parametrize("window", [0.0, -1.0, math.nan, math.inf])
def test_bad_window_is_refused(window: float) -> None:
    with pytest.raises(ValueError, match="window_s"):
        PairingBook(window)


# -- properties ------------------------------------------------------------

DOORS = ("door-1", "door-2")
UIDS = ("00000001", "00000002", "00000003")

operation = st.one_of(
    st.tuples(st.just("card"), st.sampled_from(DOORS), st.sampled_from(UIDS)),
    st.tuples(st.just("temp"), st.sampled_from(DOORS), st.one_of(st.none(), st.sampled_from(UIDS))),
    st.tuples(st.just("expire"), st.just(""), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.tuples(operation, st.floats(0.0, 10.0)), max_size=60),
    max_per_door=st.integers(1, 4),
)
def test_every_card_and_reading_ends_exactly_once(ops, max_per_door: int) -> None:
    """Each card is paired or expired once; each reading is consumed or expired once;
    pairs share a door, respect binding and lie within the window."""
    b: PairingBook[int] = PairingBook(WINDOW, max_per_door=max_per_door)
    now = 0.0
    cards: dict[int, tuple[str, str, float]] = {}
    readings: dict[float, tuple[str, str | None, float]] = {}
    card_ends: list[int] = []
    reading_ends: list[float] = []
    pairs: list[tuple[int, float]] = []
    for n, ((kind, door, uid), step) in enumerate(ops):
        now += step
        if kind == "card":
            cards[n] = (door, uid, now)
            celsius = b.offer_card(door, n, uid, now)
            if celsius is not None:
                pairs.append((n, celsius))
                card_ends.append(n)
                reading_ends.append(celsius)
        elif kind == "temp":
            celsius = 30.0 + n / 1000  # unique: identifies the reading
            readings[celsius] = (door, uid, now)
            key = b.offer_temperature(door, celsius, uid, now)
            if key is not None:
                pairs.append((key, celsius))
                card_ends.append(key)
                reading_ends.append(celsius)
        else:
            expired = b.expire(now)
            card_ends.extend(expired.cards)
            reading_ends.extend(r.celsius for r in expired.readings)
        deadline = b.next_deadline()
        assert deadline is None or deadline >= 0.0
    flushed = b.expire(now + WINDOW)
    card_ends.extend(flushed.cards)
    reading_ends.extend(r.celsius for r in flushed.readings)

    assert sorted(card_ends) == sorted(cards)
    assert sorted(reading_ends) == sorted(readings)
    assert b.next_deadline() is None
    for key, celsius in pairs:
        card_door, card_uid, card_at = cards[key]
        reading_door, bound_uid, reading_at = readings[celsius]
        assert card_door == reading_door
        assert bound_uid in (None, card_uid)
        assert abs(card_at - reading_at) < WINDOW
