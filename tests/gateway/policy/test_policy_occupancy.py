"""Occupancy: counts from admitted passages, never below zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.events import Direction
from gateway.policy import Occupancy

IN, OUT = Direction.IN, Direction.OUT

PASSAGES = {
    "empty": ({}, [], 0),
    "one-in": ({}, [IN], 1),
    "in-out": ({}, [IN, OUT], 0),
    "out-of-empty-stays-zero": ({}, [OUT, OUT], 0),
    "out-of-empty-then-in": ({}, [OUT, IN], 1),
    "seeded": ({"lab": 5}, [IN, IN, OUT], 6),
    "negative-seed-is-zero": ({"lab": -3}, [IN], 1),
}


@pytest.mark.parametrize(("seed", "passages", "expected"), PASSAGES.values(), ids=PASSAGES.keys())
def test_passages(seed, passages, expected) -> None:
    occupancy = Occupancy(seed)
    results = [occupancy.passed("lab", d) for d in passages]
    assert occupancy.count("lab") == expected
    assert results[-1:] == ([expected] if passages else [])


def test_zones_are_independent() -> None:
    occupancy = Occupancy({"lab": 2})
    occupancy.passed("dorm", IN)
    occupancy.passed("lab", OUT)
    assert occupancy.snapshot() == {"lab": 1, "dorm": 1}
    occupancy.set("dorm", 40)
    assert (occupancy.count("dorm"), occupancy.count("nowhere")) == (40, 0)


@given(
    seed=st.integers(-5, 5),
    passages=st.lists(st.sampled_from([IN, OUT]), max_size=200),
)
def test_never_negative_and_matches_a_clamped_tally(seed: int, passages) -> None:
    occupancy = Occupancy({"z": seed})
    expected = max(seed, 0)
    for direction in passages:
        expected = expected + 1 if direction is IN else max(expected - 1, 0)
        assert occupancy.passed("z", direction) == expected >= 0
    assert occupancy.count("z") == expected
