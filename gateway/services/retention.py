"""The retention run: personal data past its period goes, and the audit log says how much.

Scheduled daily (gateway/services/jobs.py) and on demand (`campusgate retention run`,
POST /api/admin/retention). Periods come from the settings:
- access events and the person named by alerts: `retention_access_days` (default 90);
- health history, manual readings, daily check-ins (with their history, case-contact
  reviews and reminders, by campus day) and travel declarations: `retention_health_days`
  (default 180; a declaration counts from the end of its isolation, and the history row
  that set a person's current status stays while the status does);
- the current health status of people who left the roster (deactivated or past
  valid_until) before the health period, unchanged since: `retention_health_days`;
- daily reports and their deliveries: `retention_reports_days` (default 365);
- visitor passes that ended before the access period (their visitor's roster row keeps
  no name, contact, grant or valid card): `retention_access_days`;
- person accounts (with sessions and invitations) of people deactivated or expired
  `retention_person_account_days` (default 30) ago; expired sessions and spent
  invitations at once;
- the audit log keeps every entry, but personal detail in its snapshots goes with the
  data it describes (gateway/store/audit_redaction.py), after every purge above.

Each step logs what it removed; the run's total is logged and audited.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from gateway.services.errors import ConflictError
from gateway.services.scheduler import Job
from gateway.settings import Settings
from gateway.store import person_accounts, retention
from gateway.store.audit import record_audit
from gateway.store.audit_redaction import redact_audit
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
_LOGGER = logging.getLogger(__name__)


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
                "person_accounts": c.accounts.isoformat(),
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
        accounts=now - timedelta(days=settings.retention_person_account_days),
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
        verb = "would remove" if dry_run else "removed"

        async def step(name: str, done: Awaitable[dict[str, int]]) -> None:
            found = await done
            counts.update(found)
            shown = ", ".join(f"{k} {v}" for k, v in found.items()) or "nothing to do"
            _LOGGER.info("retention %s: %s %s", name, verb, shown)

        c = cutoffs
        await step("access", retention.purge_access_events(conn, c.access, mode, dry_run=dry_run))
        await step("alerts", retention.anonymize_alerts(conn, c.access, dry_run=dry_run))
        await step(
            "departed statuses",
            retention.purge_departed_statuses(conn, c.health, dry_run=dry_run),
        )
        await step(
            "health history", retention.purge_health_history(conn, c.health, dry_run=dry_run)
        )
        await step("readings", retention.purge_readings(conn, c.health, dry_run=dry_run))
        await step("care contacts", retention.purge_care_contacts(conn, c.health, dry_run=dry_run))
        await step("check-ins", purge_checkins(conn, c.travel, dry_run=dry_run))
        await step(
            "travel",
            retention.purge_travel(conn, c.travel, c.isolation_days, dry_run=dry_run),
        )
        await step("reports", retention.purge_reports(conn, c.reports, dry_run=dry_run))
        await step("sessions", person_accounts.purge_stale(conn, dry_run=dry_run))
        await step(
            "person accounts", person_accounts.purge_departed(conn, c.accounts, dry_run=dry_run)
        )
        await step(
            "visitor passes", retention.purge_visitor_passes(conn, c.access, dry_run=dry_run)
        )
        # Last: the audit log's details go with the data the steps above removed.
        await step(
            "audit log",
            redact_audit(
                conn,
                health_cutoff=c.health,
                access_cutoff=c.access,
                account_cutoff=c.accounts,
                dry_run=dry_run,
            ),
        )
        _LOGGER.info("retention run %s %d row(s) in all", verb, sum(counts.values()))
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
