"""Who has checked in today (issue #15): a unit's rate and missing list for liaisons,
reminders before the cut-off, and the figures of the daily reports.

The cut-off (CAMPUSGATE_CHECKIN_CUTOFF, campus time) splits the day: before it, people
without a check-in are "not yet"; after it, they are missing. Reminders go out
CAMPUSGATE_CHECKIN_REMINDER_MINUTES before the cut-off, once a person a day, to the
webhook CAMPUSGATE_CHECKIN_REMINDER_WEBHOOK (a campus messaging bridge that reaches
each person's phone): person ids and the cut-off only, no health data. A failed post
is forgotten, so the next run sends it again.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from gateway.domain.checkin import campus_day
from gateway.services.scheduler import Job
from gateway.settings import Settings
from gateway.store import checkins as store

_LOGGER = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10.0
REMINDER_EVERY_S = 60.0

__all__ = [
    "cutoff_at",
    "day_figures",
    "reminder_job",
    "send_reminders",
    "unit_status",
]


def _hhmm(value: str) -> time:
    hour, _, minute = value.partition(":")
    return time(int(hour), int(minute))


def cutoff_at(day: date, settings: Settings) -> datetime:
    """The day's cut-off as an aware instant (campus time)."""
    return datetime.combine(day, _hhmm(settings.checkin_cutoff), tzinfo=settings.tz)


async def unit_status(
    conn: asyncpg.Connection, settings: Settings, org_scope: str | None, now: datetime
) -> dict[str, Any]:
    """Today's check-in rate within `org_scope` (None: the campus) and who is missing.

    `missing` lists those without a check-in today; `late` those who checked in after
    the cut-off; `past_cutoff` says whether the cut-off has passed.
    """
    tz: ZoneInfo = settings.tz
    day = campus_day(now, tz)
    cutoff = cutoff_at(day, settings)
    people = await store.expected_people(conn, day, org_scope, now)
    done = [p for p in people if p["submitted_at"] is not None]
    return {
        "day": day.isoformat(),
        "org_unit": org_scope,
        "cutoff": cutoff.isoformat(),
        "past_cutoff": now >= cutoff,
        "expected": len(people),
        "checked_in": len(done),
        "rate": round(len(done) / len(people), 4) if people else None,
        "missing": [_who(p) for p in people if p["submitted_at"] is None],
        "late": [_who(p) for p in done if p["submitted_at"] > cutoff],
    }


def _who(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "org_unit": row["org_unit_id"],
    }


def reminder_due(now: datetime, settings: Settings) -> bool:
    """True within the reminder lead before today's cut-off (campus time)."""
    cutoff = cutoff_at(campus_day(now, settings.tz), settings)
    return cutoff - timedelta(minutes=settings.checkin_reminder_minutes) <= now < cutoff


async def send_reminders(
    conn: asyncpg.Connection, settings: Settings, now: datetime
) -> dict[str, int]:
    """Remind everyone not checked in today who was not reminded yet; {reminded, failed}."""
    url = settings.checkin_reminder_webhook
    if not url:
        return {"reminded": 0, "failed": 0}
    day = campus_day(now, settings.tz)
    people = await store.expected_people(conn, day, None, now)
    missing = [p["id"] for p in people if p["submitted_at"] is None]
    fresh = await store.mark_reminded(conn, missing, day) if missing else []
    if not fresh:
        return {"reminded": 0, "failed": 0}
    payload = {
        "type": "campusgate.checkin_reminder",
        "day": day.isoformat(),
        "cutoff": cutoff_at(day, settings).isoformat(),
        "people": fresh,
        "message_zh": "请在截止时间前完成今日健康打卡",
        "message_en": "Please do today's health check-in before the cut-off",
    }
    try:
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
            response = await client.post(url, json=payload)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        _LOGGER.warning("check-in reminders for %d people failed: %s", len(fresh), exc)
        await store.forget_reminded(conn, fresh, day)
        return {"reminded": 0, "failed": len(fresh)}
    _LOGGER.info("check-in reminders sent to %d people", len(fresh))
    return {"reminded": len(fresh), "failed": 0}


def reminder_job(pool: asyncpg.Pool, settings: Settings) -> Job:
    """Every minute: within the lead before the cut-off, remind those not checked in."""

    async def run(now: datetime) -> dict[str, int]:
        if not settings.checkin_reminder_webhook or not reminder_due(now, settings):
            return {"reminded": 0, "failed": 0}
        async with pool.acquire() as conn:
            return await send_reminders(conn, settings, now)

    return Job("checkin-reminders", run, every_s=REMINDER_EVERY_S)


async def day_figures(
    conn: asyncpg.Connection, settings: Settings, day: date, now: datetime
) -> dict[str, Any]:
    """The check-in numbers and missing list of `day` per audience (students, staff)."""
    numbers = await store.day_numbers(conn, day, now, settings.fever_threshold_c)
    people = await store.expected_people(conn, day, None, now)
    out: dict[str, Any] = {}
    for kind in ("student", "staff"):
        row = numbers.get(kind) or {}
        expected = int(row.get("expected", 0))
        checked_in = int(row.get("checked_in", 0))
        out[kind] = {
            "expected": expected,
            "checked_in": checked_in,
            "rate": round(checked_in / expected, 4) if expected else None,
            "flagged": int(row.get("flagged", 0)),
            "case_contacts": int(row.get("case_contacts", 0)),
            "off_campus": int(row.get("off_campus", 0)),
            "missing": [_who(p) for p in people if p["kind"] == kind and p["submitted_at"] is None],
        }
    return out
