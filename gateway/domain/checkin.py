"""The daily health check-in a person makes on the phone (issue #15, point 2).

One check-in per person per campus day; a second one the same day replaces it and
the first stays in the history. Validation lives here so that the API, the CLI and
the tests refuse the same things with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

# A reading outside these bounds (inclusive) is a bad measurement, not a body
# (the same bounds as the doors' temperature_invalid).
MIN_TEMPERATURE_C = 34.0
MAX_TEMPERATURE_C = 43.0
MAX_PLACE_CHARS = 100  # a dormitory or a city
MAX_TRAVEL_PLANS_CHARS = 1000


class Location(StrEnum):
    ON_CAMPUS = "on_campus"  # with the dormitory
    OFF_CAMPUS = "off_campus"  # with the city


class Symptom(StrEnum):
    """The fixed list a person ticks; any one puts them on fever_watch."""

    FEVER = "fever"
    COUGH = "cough"
    SORE_THROAT = "sore_throat"
    FATIGUE = "fatigue"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    LOSS_OF_TASTE_SMELL = "loss_of_taste_smell"
    DIARRHEA = "diarrhea"


class CheckInInvalid(ValueError):
    """A check-in that cannot be taken; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class CheckIn:
    """What a person reported for one campus day (validated: build with `check_in`)."""

    location: Location
    temperature_c: float
    symptoms: tuple[Symptom, ...] = ()
    case_contact: bool = False
    dormitory: str | None = None
    city: str | None = None
    travel_plans: str | None = None

    def has_fever(self, threshold_c: float) -> bool:
        """At or above the campus fever threshold (compared at 0.1 C, as reported)."""
        return round(self.temperature_c, 1) >= round(threshold_c, 1) or (
            Symptom.FEVER in self.symptoms
        )

    def needs_fever_watch(self, threshold_c: float) -> bool:
        """A fever or any symptom: the health officer must see this person."""
        return self.has_fever(threshold_c) or bool(self.symptoms)


def campus_day(at: datetime, tz: ZoneInfo) -> date:
    """The campus-local date of `at` (a timezone-aware instant)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    return at.astimezone(tz).date()


def _text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > limit:
        raise CheckInInvalid(field, f"{field} is longer than {limit} characters")
    if any(ord(ch) < 0x20 and ch not in "\n\t" for ch in cleaned):
        raise CheckInInvalid(field, f"{field} holds control characters")
    return cleaned


def _symptoms(codes: Iterable[str]) -> tuple[Symptom, ...]:
    known = {s.value: s for s in Symptom}
    found: list[Symptom] = []
    for code in codes:
        symptom = known.get(code)
        if symptom is None:
            raise CheckInInvalid(
                "symptoms",
                f"unknown symptom {code!r}; known: {', '.join(known)}",
            )
        if symptom not in found:
            found.append(symptom)
    return tuple(found)


def check_in(
    *,
    location: str,
    temperature_c: float,
    symptoms: Iterable[str] = (),
    case_contact: bool = False,
    dormitory: str | None = None,
    city: str | None = None,
    travel_plans: str | None = None,
) -> CheckIn:
    """A validated check-in; CheckInInvalid names the first field at fault."""
    try:
        where = Location(location)
    except ValueError:
        raise CheckInInvalid("location", "location must be on_campus or off_campus") from None
    if isinstance(temperature_c, bool) or not isinstance(temperature_c, int | float):
        raise CheckInInvalid("temperature_c", "temperature_c must be a number")
    if not math.isfinite(temperature_c) or not (
        MIN_TEMPERATURE_C <= temperature_c <= MAX_TEMPERATURE_C
    ):
        raise CheckInInvalid(
            "temperature_c",
            f"temperature_c must be a measurement between {MIN_TEMPERATURE_C} and "
            f"{MAX_TEMPERATURE_C} C",
        )
    dorm = _text("dormitory", dormitory, MAX_PLACE_CHARS)
    town = _text("city", city, MAX_PLACE_CHARS)
    if where is Location.ON_CAMPUS:
        if dorm is None:
            raise CheckInInvalid("dormitory", "on campus: name the dormitory")
        if town is not None:
            raise CheckInInvalid("city", "on campus: leave city out")
    else:
        if town is None:
            raise CheckInInvalid("city", "off campus: name the city")
        if dorm is not None:
            raise CheckInInvalid("dormitory", "off campus: leave dormitory out")
    return CheckIn(
        location=where,
        temperature_c=round(float(temperature_c), 1),
        symptoms=_symptoms(symptoms),
        case_contact=bool(case_contact),
        dormitory=dorm,
        city=town,
        travel_plans=_text("travel_plans", travel_plans, MAX_TRAVEL_PLANS_CHARS),
    )
