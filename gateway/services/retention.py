"""The retention run: personal data past its period goes, and the audit log says how much.

Scheduled daily (gateway/services/jobs.py) and on demand (`campusgate retention run`,
POST /api/admin/retention). Periods come from the settings:
- access events and the person named by alerts: `retention_access_days` (default 90);
- health history, manual readings, daily check-ins (with their history, case-contact
  reviews and reminders, by campus day) and travel declarations: `retention_health_days`
  (default 180; a declaration counts from the end of its isolation, and the history row
  that set a person's current status always stays);
- daily reports and their deliveries: `retention_reports_days` (default 365);
- visitor passes that ended before the access period (their visitor's roster row keeps
  no name, contact, grant or valid card): `retention_access_days`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from gateway.services.errors import ConflictError
from gateway.services.scheduler import Job
from gateway.settings import Settings
from gateway.store import person_accounts, retention
from gateway.store.audit import record_audit
from gateway.store.checkins import purge_checkins
from gateway.store.locks import LockKey, try_session_lock
from gateway.store.retention import AccessMode, Cutoffs

__all__ = [
    "AccessMode",
    "RetentionBusyError",
    "RetentionReport",
    "cutoffs_for",
    "retention_job",
    "run_retention",
]

OPERATOR = "retention"  # the audit log's operator of every run


class RetentionBusyError(ConflictError, RuntimeError):
    """Another retention run holds the lock."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a run removed or anonymized (or, dry, would have), per table."""

    dry_run: bool
    mode: AccessMode
    cutoffs: Cutoffs
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        c = self.cutoffs
        return {
            "dry_run": self.dry_run,
            "mode": self.mode.value,
            "cutoffs": {
                "access": c.access.isoformat(),
                "health": c.health.isoformat(),
                "travel_isolation_ended_before": c.travel.isoformat(),
                "reports": c.reports.isoformat(),
            },
            "counts": dict(self.counts),
        }


def cutoffs_for(settings: Settings, now: datetime) -> Cutoffs:
    """The cut-offs of a run at `now` (days counted back from now; travel by campus day)."""
    tz: ZoneInfo = settings.tz
    health = now - timedelta(days=settings.retention_health_days)
    return Cutoffs(
        access=now - timedelta(days=settings.retention_access_days),
        health=health,
        travel=health.astimezone(tz).date(),
        isolation_days=settings.isolation_days,
        reports=now - timedelta(days=settings.retention_reports_days),
    )


async def run_retention(
    conn: asyncpg.Connection,
    settings: Settings,
    now: datetime,
    *,
    mode: AccessMode = AccessMode.DELETE,
    dry_run: bool = False,
    requested_by: str = "schedule",
) -> RetentionReport:
    """Apply (or with `dry_run` only count) every retention step; audit a real run."""
    cutoffs = cutoffs_for(settings, now)
    async with try_session_lock(conn, LockKey.RETENTION) as taken:
        if not taken:
            raise RetentionBusyError("another retention run is in progress; try again later")
        counts: dict[str, int] = {}
        counts |= await retention.purge_access_events(conn, cutoffs.access, mode, dry_run=dry_run)
        counts |= await retention.anonymize_alerts(conn, cutoffs.access, dry_run=dry_run)
        counts |= await retention.purge_health_history(conn, cutoffs.health, dry_run=dry_run)
        counts |= await retention.purge_readings(conn, cutoffs.health, dry_run=dry_run)
        counts |= await retention.purge_care_contacts(conn, cutoffs.health, dry_run=dry_run)
        counts |= await purge_checkins(conn, cutoffs.travel, dry_run=dry_run)
        counts |= await retention.purge_travel(
            conn, cutoffs.travel, cutoffs.isolation_days, dry_run=dry_run
        )
        counts |= await retention.purge_reports(conn, cutoffs.reports, dry_run=dry_run)
        counts |= await person_accounts.purge_stale(conn, dry_run=dry_run)
        counts |= await retention.purge_visitor_passes(conn, cutoffs.access, dry_run=dry_run)
        report = RetentionReport(dry_run, mode, cutoffs, counts)
        if not dry_run:
            after = report.as_dict() | {"requested_by": requested_by}
            await record_audit(
                conn, OPERATOR, "purge", "retention", now.date().isoformat(), after=after
            )
        return report


RETENTION_TIME = time(3, 30)  # campus time: after midnight's reports, before the morning


def retention_job(pool: asyncpg.Pool, settings: Settings) -> Job:
    """The daily retention run (delete mode) of a campus served from `pool`."""

    async def run(now: datetime) -> dict[str, int]:
        async with pool.acquire() as conn:
            return (await run_retention(conn, settings, now)).counts

    return Job("retention", run, daily_at=RETENTION_TIME)
