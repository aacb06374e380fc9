"""The daily check-in (issue #15, point 2): a person reports, the doors and the health
officers follow.

A check-in is stored for its campus day (CAMPUSGATE_TIMEZONE); a second one the same
day replaces it and both stay in the history. A fever (at or above the campus
threshold) or any symptom sets `fever_watch` through the health service, so the change
is audited, reaches every gateway's roster like any health change (within a second) and
puts the person in the health officers' fever review; a person already under a hold
keeps it. A reported case contact goes on the officers' review list. The first row of a
day NOTIFYs the gateways of the check-in itself (a zone that requires it admits the
same card at once); same-day corrections notify nothing (migration 0028), and a person
makes at most MAX_CHECKINS_PER_DAY check-ins a day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.checkin import CheckIn, campus_day
from gateway.domain.health import HealthStatus
from gateway.services.errors import ConflictError, NotAllowedError, NotFoundError, TooManyError
from gateway.services.health import change_status, current_status
from gateway.store import checkins as store
from gateway.store.audit import record_audit

__all__ = [
    "CHECKIN_ACTOR",
    "MAX_CHECKINS_PER_DAY",
    "my_checkins",
    "resolve_contact_review",
    "submit_checkin",
]

# The health history's and audit log's operator for what a check-in sets.
CHECKIN_ACTOR = "checkin"
# Corrections a person may make in a day: enough for honest mistakes, and a bound on what
# one person re-submitting in a loop writes (each version stays in the history).
MAX_CHECKINS_PER_DAY = 20


def _actor(person_id: str) -> str:
    return f"person:{person_id}"


def _fever_reason(checkin: CheckIn, threshold_c: float) -> str:
    parts = []
    if round(checkin.temperature_c, 1) >= round(threshold_c, 1):
        parts.append(f"{checkin.temperature_c:.1f} C")
    if checkin.symptoms:
        parts.append(", ".join(s.value for s in checkin.symptoms))
    return "daily check-in: " + "; ".join(parts)


async def submit_checkin(
    conn: asyncpg.Connection,
    person_id: str,
    checkin: CheckIn,
    *,
    now: datetime,
    tz: ZoneInfo,
    threshold_c: float,
) -> dict[str, Any]:
    """Store `checkin` as the person's of today (campus time), with its consequences.

    NotAllowedError for a person who is unknown, inactive or past their validity;
    TooManyError past MAX_CHECKINS_PER_DAY check-ins of the day.
    Returns {day, submitted_at, hold, updated}: `hold` is "fever_watch" when the person
    is on fever watch after this check-in, `updated` whether it replaced an earlier one.
    """
    day = campus_day(now, tz)
    async with conn.transaction():
        person = await store.lock_person(conn, person_id)
        if person is None:
            raise NotAllowedError(f"no person record {person_id!r}: check-in refused")
        if not person.active or (person.valid_until is not None and now >= person.valid_until):
            raise NotAllowedError(f"person {person_id!r} is deactivated: check-in refused")
        if await store.versions_of_day(conn, person_id, day) >= MAX_CHECKINS_PER_DAY:
            raise TooManyError(
                f"at most {MAX_CHECKINS_PER_DAY} check-ins a day: today's "
                f"({day.isoformat()}) is stored; try again tomorrow"
            )
        version = await store.save_checkin(conn, person_id, day, checkin, now)
        hold = await _watch_if_needed(conn, person_id, checkin, now, threshold_c)
        contact = checkin.case_contact and await store.open_contact_review(conn, person_id, day)
        await record_audit(
            conn,
            _actor(person_id),
            "checkin",
            "daily_checkin",
            person_id,
            # No health details in the audit log: what happened, not what was reported.
            after={
                "day": day.isoformat(),
                "version": version,
                "hold": hold,
                "contact_review": bool(contact),
            },
        )
    return {
        "day": day.isoformat(),
        "submitted_at": now.isoformat(),
        "hold": hold,
        "updated": version > 1,
    }


async def _watch_if_needed(
    conn: asyncpg.Connection,
    person_id: str,
    checkin: CheckIn,
    now: datetime,
    threshold_c: float,
) -> str | None:
    """Put the person on fever_watch for a fever or a symptom, unless a hold is in force."""
    current = await current_status(conn, person_id)
    status = current.effective(now) if current else HealthStatus.CLEAR
    if status is HealthStatus.FEVER_WATCH:
        return HealthStatus.FEVER_WATCH.value
    if not checkin.needs_fever_watch(threshold_c) or status.blocks_entry:
        return None
    await change_status(
        conn,
        person_id,
        HealthStatus.FEVER_WATCH,
        by=CHECKIN_ACTOR,
        reason=_fever_reason(checkin, threshold_c),
    )
    return HealthStatus.FEVER_WATCH.value


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


async def my_checkins(
    conn: asyncpg.Connection, person_id: str, *, now: datetime, tz: ZoneInfo, limit: int = 60
) -> dict[str, Any]:
    """The person's check-in of today (None when not yet made) and their history."""
    day = campus_day(now, tz)
    today = await store.checkin_of(conn, person_id, day)
    history = await store.checkin_history(conn, person_id, limit=limit)
    return {
        "day": day.isoformat(),
        "today": None if today is None else _jsonable(today),
        "history": [_jsonable(r) for r in history],
    }


async def contact_reviews(conn: asyncpg.Connection, *, open_only: bool) -> list[dict[str, Any]]:
    """The case-contact review list (open first, oldest first)."""
    return await store.contact_reviews(conn, open_only=open_only)


async def resolve_contact_review(
    conn: asyncpg.Connection, review_id: int, *, by: str, outcome: str, now: datetime
) -> dict[str, Any]:
    """Close a review with the officer's outcome (audited); 404 / 409 as it stands."""
    async with conn.transaction():
        row = await store.resolve_contact_review(conn, review_id, by=by, outcome=outcome, at=now)
        if row is None:
            if not await store.review_exists(conn, review_id):
                raise NotFoundError(f"no case-contact review {review_id}")
            raise ConflictError(f"case-contact review {review_id} is already resolved")
        await record_audit(
            conn,
            by,
            "resolve",
            "checkin_contact_review",
            str(review_id),
            after=_jsonable(row),
        )
    return row
