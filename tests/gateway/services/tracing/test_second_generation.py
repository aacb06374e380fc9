"""The second generation on hand-made passages: traced only from close first-generation
contacts (exposure threshold, seed cap, both reported) and each contact's `via`."""

from __future__ import annotations

import csv
import io

import pytest
from tracing_rows import at, passage, seed

from gateway.services.tracing import TraceError, TraceRequest, contacts_csv, trace
from gateway.settings import Settings

SETTINGS = Settings(trace_entry_gap_s=900, trace_max_stay_h=12)


def stay(person: str, zone: str, start: float, end: float):
    return [passage(person, zone, start), passage(person, zone, end, "out")]


ROWS = [
    # X, the index, in the lab 0-60 with B (60 min), D (40 min) and Q (3 min).
    *stay("X", "lab", 0, 60), *stay("B", "lab", 0, 60), *stay("D", "lab", 10, 50),
    *stay("Q", "lab", 55, 58),
    # Afterwards B and D share the office (one island, 100-220), but not everyone in it
    # met both: C only B, V only D, W both (D longer).
    *stay("B", "office", 100, 160), *stay("D", "office", 150, 220),
    *stay("C", "office", 110, 140),  # 30 min with B, none with D
    *stay("W", "office", 150, 175),  # 10 min with B, 25 min with D
    *stay("V", "office", 190, 215),  # 25 min with D only
    # Q's only contact, in another room.
    *stay("Q", "store", 70, 100), *stay("R", "store", 70, 100),
]  # fmt: skip
PEOPLE = ["X", "B", "C", "D", "Q", "R", "V", "W"]


@pytest.fixture
async def traced(conn):
    await seed(conn, PEOPLE, ROWS)
    return conn


def request(**kwargs) -> TraceRequest:
    return TraceRequest("X", start=at(-60), end=at(600), generations=2, **kwargs)


def second_of(result) -> dict[str, tuple[str, ...]]:
    return {c.person_id: c.via for c in result.contacts if c.generation == 2}


async def test_via_names_the_seeds_each_contact_met(traced):
    result = await trace(traced, request(), SETTINGS, by="officer")
    assert [c.person_id for c in result.contacts if c.generation == 1] == ["B", "D", "Q"]
    # Q (3 min) is below the default 15 minutes: R, met only by Q, is not traced.
    assert result.second_seeds == ("B", "D") and result.second_seeds_eligible == 2
    assert not result.second_seeds_truncated
    assert second_of(result) == {"C": ("B",), "V": ("D",), "W": ("D", "B")}
    assert all(c.via == () for c in result.contacts if c.generation == 1)


async def test_a_lower_exposure_threshold_seeds_more(traced):
    result = await trace(traced, request(second_min_exposure_s=60), SETTINGS, by="officer")
    assert result.second_seeds == ("B", "D", "Q")
    assert second_of(result)["R"] == ("Q",)


async def test_the_seed_cap_leaves_the_less_exposed_out_and_says_so(traced):
    result = await trace(traced, request(second_max_seeds=1), SETTINGS, by="officer")
    assert result.second_seeds == ("B",) and result.second_seeds_eligible == 2
    assert result.second_seeds_truncated
    # V met only D, whom the cap left out; W is still found, through B.
    assert second_of(result) == {"C": ("B",), "W": ("B",)}
    rows = list(csv.DictReader(io.StringIO(contacts_csv(result))))
    marks = {r["person_id"]: (r["second_seed"], r["via"]) for r in rows}
    assert marks == {
        "B": ("yes", ""), "D": ("capped", ""), "Q": ("no", ""),
        "C": ("", "B"), "W": ("", "B"),
    }  # fmt: skip
    audit = await traced.fetchval(
        "SELECT after FROM audit_log WHERE action = 'trace' ORDER BY id DESC LIMIT 1"
    )
    assert audit["second_seeds"] == 1


async def test_first_generation_only_has_no_seeds(traced):
    result = await trace(
        traced, TraceRequest("X", start=at(-60), end=at(600)), SETTINGS, by="officer"
    )
    assert result.second_seeds == () and not result.second_seeds_truncated
    assert {r["second_seed"] for r in csv.DictReader(io.StringIO(contacts_csv(result)))} == {""}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"second_min_exposure_s": -1}, "second_min_exposure_s"),
        ({"second_max_seeds": 0}, "second_max_seeds"),
        ({"second_max_seeds": 501}, "second_max_seeds"),
    ],
)
async def test_bad_second_generation_parameters(traced, kwargs, message):
    with pytest.raises(TraceError, match=message):
        await trace(traced, request(**kwargs), SETTINGS, by="x")
