"""Weekly schedules such as ``Mon-Fri 07:00-23:00`` (contract section 6).

A schedule is one or more ``DAYS START-END`` clauses joined by ``;``. Days are
``daily``, a range ``Mon-Fri`` (wrapping, so ``Fri-Mon`` works) or a list
``Sat,Sun``. A time range whose end is not after its start crosses midnight
and belongs to the day it starts on: ``Fri 22:00-06:00`` covers Friday 22:00
to Saturday 06:00. ``24:00`` may end a range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLAUSE = re.compile(
    r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


class ScheduleError(ValueError):
    """A schedule text that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class ScheduleClause:
    days: frozenset[int]  # 0 = Monday
    start_min: int  # minutes after midnight
    end_min: int  # may be <= start_min: crosses midnight

    def allows(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        if self.start_min < self.end_min:
            return today in self.days and self.start_min <= minute < self.end_min
        # Crosses midnight: the late part belongs to today, the early part to yesterday.
        if today in self.days and minute >= self.start_min:
            return True
        yesterday = (local - timedelta(days=1)).weekday()
        return yesterday in self.days and minute < self.end_min


@dataclass(frozen=True, slots=True)
class Schedule:
    text: str
    clauses: tuple[ScheduleClause, ...]

    def allows(self, local: datetime) -> bool:
        """True when `local` (a time in the campus zone) falls inside the schedule."""
        return any(c.allows(local) for c in self.clauses)


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(name: str, text: str) -> int:
    key = name.strip().lower()
    for index, (short, full) in enumerate(zip(DAY_NAMES, _FULL_NAMES, strict=True)):
        if key in (short, full):
            return index
    raise ScheduleError(f"unknown day {name.strip()!r} in schedule {text!r}")


def _days(spec: str, text: str) -> frozenset[int]:
    spec = spec.strip()
    if spec.lower() in ("daily", "everyday", "every day"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first, text), _day(last, text)
            d = a
            while True:
                days.add(d)
                if d == b:
                    break
                d = (d + 1) % 7
        else:
            days.add(_day(part, text))
    return frozenset(days)


def _minutes(hhmm: str, text: str, *, allow_24: bool) -> int:
    hour_s, _, minute_s = hhmm.partition(":")
    hour, minute = int(hour_s), int(minute_s)
    if allow_24 and hour == 24 and minute == 0:
        return 24 * 60
    try:
        time(hour, minute)
    except ValueError:
        raise ScheduleError(f"bad time {hhmm!r} in schedule {text!r}") from None
    return hour * 60 + minute


def parse_schedule(text: str) -> Schedule:
    """Parse a schedule text, or raise ScheduleError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("schedule must be a non-empty text such as 'Mon-Fri 07:00-23:00'")
    clauses = []
    for raw in text.split(";"):
        m = _CLAUSE.match(raw)
        if not m:
            raise ScheduleError(
                f"cannot read schedule {text!r}; expected e.g. 'Mon-Fri 07:00-23:00' or 'daily 06:00-24:00'"
            )
        start = _minutes(m["start"], text, allow_24=False)
        end = _minutes(m["end"], text, allow_24=True)
        if start == end:
            raise ScheduleError(f"empty time range in schedule {text!r}")
        clauses.append(ScheduleClause(_days(m["days"], text), start, end))
    return Schedule(text.strip(), tuple(clauses))
