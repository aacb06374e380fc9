"""Contact tracing: who shared a zone with whom, and for how long (issue #5, item 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.domain.health import Reassignment

# Two people are contacts when their presence in one zone overlapped at least this
# long in total; the simulator's ground truth uses the same threshold.
MIN_OVERLAP_S = 60.0
# The second generation starts from close first-generation contacts only: at least this
# much exposure (15 minutes, the usual close-contact duration), and at most the top
# SECOND_MAX_SEEDS of them by exposure (SECOND_MAX_SEEDS_LIMIT at the most).
SECOND_MIN_EXPOSURE_S = 900.0
SECOND_MAX_SEEDS = 50
SECOND_MAX_SEEDS_LIMIT = 500
# A second-generation contact names at most this many first-generation contacts in `via`.
MAX_VIA = 3


class Method(StrEnum):
    OVERLAP = "overlap"  # stays from in and out passages overlapped
    ENTRY_PROXIMITY = "entry_proximity"  # a zone without exits: entries close in time
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class TraceWindow:
    """What a trace looks at, and how presence is inferred from passages."""

    start: datetime
    end: datetime
    max_stay_s: float  # a stay without an out ends at the next passage or after this
    entry_gap_s: float  # entries at most this far apart are an encounter (zones without exits)
    min_overlap_s: float = MIN_OVERLAP_S


@dataclass(frozen=True, slots=True)
class Contact:
    """One person who shared a zone with the index person (or with a first-generation contact).

    `exposure_s` ranks contacts: the measured overlap plus, for each entry-proximity
    encounter (where no exit was logged), an assumed `entry_gap_s`.
    """

    person_id: str
    name: str | None
    generation: int
    method: Method
    zones: tuple[str, ...]
    first_encounter: datetime
    last_encounter: datetime
    overlap_s: float
    encounters: int
    proximity_encounters: int
    exposure_s: float
    # Second generation: the first-generation contacts through whom this person was found,
    # the one with the most exposure first (at most MAX_VIA).
    via: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceResult:
    person_id: str
    name: str | None
    window: TraceWindow
    generations: int
    contacts: tuple[Contact, ...]
    truncated: bool = False  # more contacts were found than `limit` let through
    # The first-generation contacts the second generation was traced from, by exposure;
    # truncated when more than `second_max_seeds` had enough exposure.
    second_seeds: tuple[str, ...] = ()
    second_seeds_eligible: int = 0  # first-generation contacts with enough exposure
    second_seeds_truncated: bool = False
    second_min_exposure_s: float = SECOND_MIN_EXPOSURE_S
    second_max_seeds: int = SECOND_MAX_SEEDS


@dataclass(frozen=True, slots=True)
class MarkOutcome:
    """What one step of marking close contacts did."""

    marked: tuple[tuple[str, str | None], ...]  # (person, caretaker)
    skipped: tuple[tuple[str, str], ...]  # (person, why)
    until: datetime
    # People in the care of someone marked here, given another caretaker.
    reassigned: tuple[Reassignment, ...] = ()
