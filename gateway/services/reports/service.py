"""Generating, storing, sending and re-sending daily reports: the use cases behind the
API, the CLI, the schedule and the demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from gateway.domain.reports import Audience, DailyReport, Delivery, Recipient, parse_recipients
from gateway.services.errors import NotFoundError
from gateway.services.reports.compute import UnknownOrgUnitError, build_all, load_day
from gateway.services.reports.delivery import deliver, filename, render_all
from gateway.settings import Settings
from gateway.store import reports as store

# progress(done, total, what): called as reports are built, stored and sent.
Progress = Callable[[int, int, str], None]
# Failed deliveries of reports younger than this are retried by the next scheduled run.
RETRY_DAYS = 7


class ReportNotFoundError(NotFoundError):
    """No stored report with that id."""


def reports_dir(settings: Settings) -> Path:
    """Where generated reports are also written as files: <data dir>/reports/<day>/."""
    return settings.data_dir / "reports"


def recipients_for(settings: Settings, audience: Audience) -> tuple[Recipient, ...]:
    return parse_recipients(settings.report_recipients)[audience]


async def generate_reports(
    conn: asyncpg.Connection,
    *,
    day: date,
    settings: Settings,
    by: str,
    org_units: Sequence[str | None] | None = None,
    audiences: Sequence[Audience] = tuple(Audience),
    send: bool = False,
    write_files: bool = False,
    scheduled: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> list[DailyReport]:
    """Generate, store (and optionally send and write out) the reports of `day`.

    `org_units`: the units to report on, each with everything below it; None in the
    list is the campus-wide roll-up. Left out: the campus and every top-level unit
    (the colleges and offices under the university). A day that is not over yet is
    reported up to `now`. Raises UnknownOrgUnitError or OutOfRangeError for bad input.
    """
    now = now or datetime.now(UTC)
    facts = await load_day(conn, day, settings.tz, now, settings.fever_threshold_c)
    units = [None, *facts.tree.top_level()] if org_units is None else list(org_units)
    for unit in units:
        if unit is not None and unit not in facts.tree:
            raise UnknownOrgUnitError(f"unknown org unit {unit!r}")
    targets = [(u, a) for u in units for a in audiences]
    total = len(targets) * (2 if send else 1)
    built = await build_all(facts, targets)
    stored: list[DailyReport] = []
    async with conn.transaction():
        for (unit, audience), (summary, lists) in zip(targets, built, strict=True):
            stored.append(
                await store.insert_report(
                    conn,
                    day=day,
                    org_unit_id=unit,
                    audience=audience,
                    generated_at=now,
                    generated_by=by,
                    scheduled=scheduled,
                    cutoff=facts.cutoff,
                    summary=summary,
                    lists=lists,
                )
            )
            _tick(progress, len(stored), total, f"built {unit or 'campus'} {audience.value}")
    if write_files:
        await asyncio.to_thread(write_report_files, stored, reports_dir(settings))
    if send:
        for n, report in enumerate(stored, start=1):
            await deliver(conn, report, recipients_for(settings, report.audience), settings, by=by)
            _tick(progress, len(stored) + n, total, f"sent {report.org_unit_id or 'campus'}")
    return stored


def _tick(progress: Progress | None, done: int, total: int, what: str) -> None:
    if progress is not None:
        progress(done, total, what)


def write_report_files(reports: Sequence[DailyReport], folder: Path) -> list[Path]:
    """Write each report's HTML, CSV and XLSX under folder/<day>/ (full lists)."""
    written: list[Path] = []
    for report in reports:
        target = folder / report.day.isoformat()
        target.mkdir(parents=True, exist_ok=True)
        files = render_all(report)
        for ext, body in (("html", files.html.encode()), ("csv", files.csv), ("xlsx", files.xlsx)):
            path = target / filename(report, ext)
            path.write_bytes(body)
            written.append(path)
    return written


async def send_report(
    conn: asyncpg.Connection,
    report_id: int,
    settings: Settings,
    *,
    by: str,
    only_failed: bool = False,
) -> list[Delivery]:
    """Send (again) one stored report to its audience's recipients, or only to those whose
    latest attempt failed."""
    report = await store.get_report(conn, report_id)
    if report is None:
        raise ReportNotFoundError(f"no report {report_id}")
    recipients = list(recipients_for(settings, report.audience))
    if only_failed:
        failed = {
            r for i, r in await store.failed_deliveries(conn, report.generated_at) if i == report_id
        }
        recipients = [Recipient(a) for a in sorted(failed)]
    return await deliver(conn, report, recipients, settings, by=by)


async def retry_failed(
    conn: asyncpg.Connection, settings: Settings, *, by: str, now: datetime
) -> list[Delivery]:
    """Retry every delivery whose latest attempt failed, for reports of the last days."""
    done: list[Delivery] = []
    pending = await store.failed_deliveries(conn, now - timedelta(days=RETRY_DAYS))
    by_report: dict[int, list[str]] = {}
    for report_id, recipient in pending:
        by_report.setdefault(report_id, []).append(recipient)
    for report_id, addresses in by_report.items():
        report = await store.get_report(conn, report_id)
        if report is not None:
            recipients = [Recipient(a) for a in addresses]
            done += await deliver(conn, report, recipients, settings, by=by)
    return done
