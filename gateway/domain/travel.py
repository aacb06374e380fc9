"""Travel declarations and epidemic areas: which trips isolate, and for how long (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class EpidemicArea:
    """A listed area; `match` is looked for (case-insensitively) in a trip's destination.

    Dates are campus-local and inclusive; `effective_until` None means still listed.
    """

    id: int
    name: str
    match: str
    effective_from: date
    effective_until: date | None = None

    def covers(self, destination: str) -> bool:
        return self.match.casefold().strip() in destination.casefold()

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


def matching_areas(
    declaration: TravelDeclaration, areas: Iterable[EpidemicArea]
) -> list[EpidemicArea]:
    """The areas that make this trip isolate: the destination matches and the area was
    listed during the trip (departure to return, inclusive: so also on the return date)."""
    return [
        a
        for a in areas
        if a.covers(declaration.destination)
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
