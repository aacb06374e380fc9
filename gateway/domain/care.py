"""Caretakers' follow-up: the contacts a caretaker records with a person in isolation,
and when a case with no recent contact is flagged (issue #15, point 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# A person in isolation with no contact for this long is flagged to their caretaker;
# for twice as long, to the health officers as well.
CARE_GAP = timedelta(days=1)
NOTE_MAX = 500
# What counts as a reading a person reports over the phone (outside: a bad measurement).
REPORTED_MIN_C, REPORTED_MAX_C = 34.0, 43.0
# A contact may be recorded a little after it happened, never ahead of the clock.
CLOCK_SLACK = timedelta(minutes=5)


class Channel(StrEnum):
    """How the caretaker kept in touch ("by network and phone", or a visit)."""

    PHONE = "phone"
    MESSAGE = "message"
    VISIT = "visit"


class Feeling(StrEnum):
    """How the person says they are."""

    WELL = "well"
    UNWELL = "unwell"
    NEEDS_HELP = "needs_help"


class FollowUp(StrEnum):
    """Who is told that a case has gone without contact."""

    CARETAKER = "caretaker"  # no contact for CARE_GAP
    HEALTH_OFFICER = "health_officer"  # no contact for twice CARE_GAP


class CareContactError(ValueError):
    """A contact that cannot be recorded as given (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class CareContact:
    """One contact as a caretaker reports it."""

    channel: Channel
    at: datetime
    feeling: Feeling
    temperature_c: float | None = None
    note: str = ""

    def checked(self, now: datetime, since: datetime) -> CareContact:
        """The contact if it can be recorded for a case that began at `since`."""
        if self.at > now + CLOCK_SLACK:
            raise CareContactError("the contact's time is in the future: give when it happened")
        if self.at < since:
            raise CareContactError(
                f"the contact predates this isolation (since {since.isoformat()})"
            )
        if self.temperature_c is not None and not (
            REPORTED_MIN_C <= self.temperature_c <= REPORTED_MAX_C
        ):
            raise CareContactError(
                f"temperature {self.temperature_c} is outside {REPORTED_MIN_C}-"
                f"{REPORTED_MAX_C} C: ask the person to measure again, or leave it empty"
            )
        if len(self.note) > NOTE_MAX:
            raise CareContactError(f"the note is longer than {NOTE_MAX} characters")
        return self


def follow_up(since: datetime, last_contact: datetime | None, now: datetime) -> FollowUp | None:
    """Who must be told that a case began at `since` has gone without contact (None: nobody).

    The clock starts at the last contact, or at the start of the isolation when there
    has been none, so a new case is not flagged before its first day is out.
    """
    quiet = now - (last_contact if last_contact is not None and last_contact > since else since)
    if quiet >= 2 * CARE_GAP:
        return FollowUp.HEALTH_OFFICER
    if quiet >= CARE_GAP:
        return FollowUp.CARETAKER
    return None
