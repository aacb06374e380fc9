"""Health statuses (contract section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class HealthStatus(StrEnum):
    CLEAR = "clear"
    FEVER_WATCH = "fever_watch"
    HOME_ISOLATION = "home_isolation"
    CLOSE_CONTACT = "close_contact"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    RECOVERED = "recovered"

    @property
    def blocks_entry(self) -> bool:
        return self not in (HealthStatus.CLEAR, HealthStatus.RECOVERED)


# Statuses that keep a person at home under a caretaker's watch (fever_watch does not:
# it lasts until a re-measurement, usually within the hour).
ISOLATION_STATUSES = frozenset(
    {
        HealthStatus.HOME_ISOLATION,
        HealthStatus.CLOSE_CONTACT,
        HealthStatus.SUSPECTED,
        HealthStatus.CONFIRMED,
    }
)


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """A person's current health status; `until` returns it to clear by itself."""

    person_id: str
    status: HealthStatus
    since: datetime
    until: datetime | None = None
    reason: str = ""
    caretaker_id: str | None = None
    set_by: str | None = None

    def effective_status(self, now: datetime) -> HealthStatus:
        if self.until is not None and now >= self.until:
            return HealthStatus.CLEAR
        return self.status

    def holds(self, now: datetime) -> bool:
        """True when this status blocks entry at `now`."""
        return self.effective_status(now).blocks_entry


@dataclass(frozen=True, slots=True)
class Reassignment:
    """A person whose caretaker became held: who cared before, who cares now (None: no
    eligible staff was found, the officer must name one), and the reason in the history."""

    person_id: str
    previous_caretaker_id: str
    caretaker_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "previous_caretaker_id": self.previous_caretaker_id,
            "caretaker_id": self.caretaker_id,
            "reason": self.reason,
        }


def isolation_day(since: datetime, now: datetime, tz: ZoneInfo) -> int:
    """The day of isolation `now` falls on: day 1 is the campus-local date of `since`."""
    return (now.astimezone(tz).date() - since.astimezone(tz).date()).days + 1
