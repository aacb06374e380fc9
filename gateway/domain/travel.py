"""Travel declarations and epidemic areas: which trips isolate, and for how long (pure)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def normalise(text: str) -> str:
    """The form text matches compare: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def division_level(code: str) -> int:
    """0 province (xx0000), 1 city (xxxx00), 2 district or county (GB/T 2260 codes)."""
    return 0 if code.endswith("0000") else 1 if code.endswith("00") else 2


def within(code: str, area: str) -> bool:
    """True when division `code` lies in (or is) division `area`: a province holds its
    cities and districts, a city its districts; a district only itself."""
    level = division_level(area)
    return code[: (2, 4, 6)[level]] == area[: (2, 4, 6)[level]]


@dataclass(frozen=True, slots=True)
class EpidemicArea:
    """A listed area: an administrative division (`division`, a GB/T 2260 code), or, for
    places outside the gazetteer, a text looked for in destinations (`terms`, else `match`).

    Dates are campus-local and inclusive; `effective_until` None means still listed.
    """

    id: int
    name: str
    match: str
    effective_from: date
    effective_until: date | None = None
    division: str | None = None
    terms: tuple[str, ...] = ()  # normalised texts of the text match (the division's names)

    def covers(self, destination: str, divisions: tuple[str, ...] | None = None) -> bool:
        """A trip resolved to divisions is covered by division; one that named none (a
        foreign place, an ambiguous name) by text."""
        if self.division is not None and divisions:
            return any(within(d, self.division) for d in divisions)
        text = normalise(destination)
        return any(t in text for t in (self.terms or (normalise(self.match),)) if t)

    def effective_during(self, first: date, last: date) -> bool:
        """True when the area was listed on any day from `first` to `last` (inclusive)."""
        return self.effective_from <= last and (
            self.effective_until is None or self.effective_until >= first
        )


@dataclass(frozen=True, slots=True)
class TravelDeclaration:
    id: int
    person_id: str
    destination: str
    departure_date: date
    return_date: date
    isolated_at: datetime | None = None  # when it last put (or kept) the person in isolation
    waived_at: datetime | None = None
    matched_areas: tuple[str, ...] = ()  # area names found at the last evaluation
    divisions: tuple[str, ...] | None = None  # resolved from the destination; None: not yet


def matching_areas(
    declaration: TravelDeclaration, areas: Iterable[EpidemicArea]
) -> list[EpidemicArea]:
    """The areas that make this trip isolate: the destination matches and the area was
    listed during the trip (departure to return, inclusive: so also on the return date)."""
    return [
        a
        for a in areas
        if a.covers(declaration.destination, declaration.divisions)
        and a.effective_during(declaration.departure_date, declaration.return_date)
    ]


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first moment of a campus-local date (contract section 6)."""
    return datetime.combine(day, time(0), tzinfo=tz)


def isolation_window(
    declaration: TravelDeclaration, days: int, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """From the start of the return date to the start of return date + `days` (campus time)."""
    return (
        start_of_day(declaration.return_date, tz),
        start_of_day(declaration.return_date + timedelta(days=days), tz),
    )
