"""Shapes of caretakers' follow-up answers, shared by the operators' routes and the
caretakers' own."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.schemas.caretakers import CareContactIn
from gateway.domain.care import CareContact, follow_up
from gateway.domain.health import isolation_day
from gateway.store.care_contacts import IsolationCase, RecordedContact


def case_view(case: IsolationCase, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """A case with its day of isolation and who must be told it has gone quiet."""
    view = asdict(case)
    view["day"] = isolation_day(case.since, now, tz)
    view["follow_up"] = follow_up(case.since, case.last_contact_at, now)
    return view


def contact_view(contact: RecordedContact) -> dict[str, Any]:
    return asdict(contact)


def contact_of(body: CareContactIn, now: datetime) -> CareContact:
    return CareContact(
        channel=body.channel,
        at=body.at or now,
        feeling=body.feeling,
        temperature_c=body.temperature_c,
        note=body.note,
    )
