"""Daily reports (issue 5, item 6): audiences, recipients, stored reports, deliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from gateway.domain.decisions import Reason


class Audience(StrEnum):
    """Whose report: students go to the student-affairs office, staff to the school office."""

    STUDENT = "student"
    STAFF = "staff"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


# A change into one of these on the day is a "new isolation".
ISOLATING = ("home_isolation", "close_contact", "suspected", "confirmed")

# Lists whose rows carry health detail: shown only to roles with READ_HEALTH.
HEALTH_LISTS = ("fevers", "health", "new_isolations")
# Lists without health detail: who was not seen on campus, who passed a door without a
# temperature reading, registered visitors refused at dormitories and labs (their health
# reasons are withheld, see `plain_lists`).
# `checkin_missing`: who had made no daily check-in that day (issue #15).
PLAIN_LISTS = ("absent", "never_screened", "visitors_refused", "checkin_missing")
LIST_NAMES = HEALTH_LISTS + PLAIN_LISTS

# Zone kinds in the roster's order (the CHECK of zones.kind).
ZONE_KINDS = ("dormitory", "lab", "office", "teaching", "gate", "other")
# Where a registered visitor's refusal is reported (with the outsiders blocked).
GUARDED_ZONE_KINDS = ("dormitory", "lab")
# Decision reasons that say something about a person's health (as api.redaction's).
HEALTH_REASONS = frozenset({Reason.FEVER, Reason.HEALTH_HOLD, Reason.TEMPERATURE_INVALID})
WITHHELD = "withheld"


def plain_lists(
    lists: dict[str, list[dict[str, Any]]], with_health: bool
) -> dict[str, list[dict[str, Any]]]:
    """The lists a role may see: without READ_HEALTH no health list, and a visitor's
    refusal for a health reason reads `withheld` (a named person's fever is health data)."""
    if with_health:
        return lists
    shown = {k: v for k, v in lists.items() if k not in HEALTH_LISTS}
    if "visitors_refused" in shown:
        shown["visitors_refused"] = [
            {**row, "reason": WITHHELD} if row.get("reason") in HEALTH_REASONS else row
            for row in shown["visitors_refused"]
        ]
    return shown


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address of report_recipients: `mailto:office@example.edu` or an http(s) URL."""

    address: str

    @property
    def channel(self) -> Channel:
        return Channel.EMAIL if self.address.startswith("mailto:") else Channel.WEBHOOK

    @property
    def email(self) -> str:
        return self.address.removeprefix("mailto:")


def _recipient(text: object, audience: str) -> Recipient:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{audience}: every address must be a non-empty string")
    address = text.strip()
    if address.startswith("mailto:"):
        mailbox = address.removeprefix("mailto:")
        local, at, domain = mailbox.partition("@")
        if not (local and at and domain) or any(c in mailbox for c in " ,;<>\r\n"):
            raise ValueError(f"{audience}: {address!r} is not mailto:name@domain")
        return Recipient(address)
    parts = urlsplit(address)
    if parts.scheme in ("http", "https") and parts.hostname:
        return Recipient(address)
    raise ValueError(f"{audience}: {address!r} is neither mailto:... nor an http(s):// URL")


def parse_recipients(text: str | None) -> dict[Audience, tuple[Recipient, ...]]:
    """report_recipients as JSON {"student": [...], "staff": [...]}; ValueError when malformed."""
    found: dict[Audience, tuple[Recipient, ...]] = {a: () for a in Audience}
    if not text or not text.strip():
        return found
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(parsed, dict):
        raise ValueError('must be a JSON object {"student": [...], "staff": [...]}')
    for key, addresses in parsed.items():
        if key not in Audience.__members__.values():
            raise ValueError(f"unknown audience {key!r}; use student and staff")
        if isinstance(addresses, str):
            addresses = [addresses]
        if not isinstance(addresses, list):
            raise ValueError(f"{key}: must be a list of addresses")
        found[Audience(key)] = tuple(_recipient(a, key) for a in addresses)
    return found


@dataclass(frozen=True, slots=True)
class DailyReport:
    """One stored generation of a (day, org unit, audience) report.

    `org_unit_id` None is the campus-wide roll-up. `summary` holds the numbers and
    `lists` the rows behind them; the renderers are pure functions of these.
    """

    id: int
    day: date
    org_unit_id: str | None
    audience: Audience
    generated_at: datetime
    generated_by: str
    scheduled: bool
    cutoff: datetime
    summary: dict[str, Any]
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to send a report to one recipient."""

    id: int
    report_id: int
    channel: Channel
    recipient: str
    sent_at: datetime
    status: str  # ok | failed
    error: str | None
    sent_by: str


# ---- the facts of one campus day, as the store reads them ------------------------------


@dataclass(frozen=True, slots=True)
class PersonDay:
    """One person's day: presence, readings, denials, and their status at the cut-off."""

    person_id: str
    name: str
    kind: str
    org_unit_id: str | None
    active: bool
    present: bool  # at least one admitted passage that day
    screenings: int  # card decisions (admit or deny) with a temperature reading
    fever_c: float | None  # the highest reading of a fever decision, if any
    denied: dict[str, int]  # reason -> denied card events
    status: str  # effective at the cut-off ('clear' without history)
    since: datetime | None = None
    until: datetime | None = None
    reason: str = ""
    caretaker_id: str | None = None
    caretaker_name: str | None = None
    # Admitted card passages as logged, by (zone kind, direction): one per door swipe.
    passages: dict[tuple[str, str], int] = field(default_factory=dict)
    first_passage_at: datetime | None = None  # the first admitted passage of the day
    first_passage_door: str | None = None


@dataclass(frozen=True, slots=True)
class VisitorRefusal:
    """A registered visitor's card denied at a door of a dormitory or lab."""

    person_id: str
    name: str
    org_unit_id: str | None  # the unit that registered (hosts) the visitor
    at: datetime
    door_id: str | None
    zone_id: str | None
    zone_kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class FeverReading:
    person_id: str
    at: datetime
    celsius: float | None
    door_id: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A change into an isolating status (a new isolation) on the day."""

    person_id: str
    status: str
    previous: str
    since: datetime
    until: datetime | None
    reason: str
    caretaker_id: str | None
    caretaker_name: str | None
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """Per day, org unit and kind: distinct people present and with a fever."""

    day: date
    org_unit_id: str | None
    kind: str
    present: int
    fevers: int
