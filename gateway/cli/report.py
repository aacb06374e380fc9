"""`campusgate report generate|list|send`: daily reports from the command line."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.domain.reports import Audience
from gateway.services.reports.compute import UnknownOrgUnitError
from gateway.services.reports.service import (
    ReportNotFoundError,
    generate_reports,
    reports_dir,
    send_report,
)
from gateway.settings import Settings
from gateway.store import reports as store

_AUDIENCES = click.Choice([a.value for a in Audience])


def _day(value: str | None, settings: Settings) -> date:
    if value is None:  # a morning report covers the day before
        return datetime.now(settings.tz).date() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.ClickException(f"--day {value!r} is not a date like 2026-11-27") from None


@click.group("report")
def command() -> None:
    """Daily reports per org unit: numbers, lists, CSV/XLSX/HTML, e-mail and webhooks."""


@command.command("generate")
@click.option("--day", default=None, help="campus-local day YYYY-MM-DD (default: yesterday)")
@click.option(
    "--org-unit",
    "org_units",
    multiple=True,
    help="an org unit (with all below it), '*' for the campus; repeatable; "
    "default: the campus and every top-level unit",
)
@click.option("--audience", type=_AUDIENCES, default=None, help="default: student and staff")
@click.option("--send", is_flag=True, help="deliver to CAMPUSGATE_REPORT_RECIPIENTS")
@click.pass_context
def generate(
    ctx: click.Context,
    day: str | None,
    org_units: tuple[str, ...],
    audience: str | None,
    send: bool,
) -> None:
    """Generate (and store) the reports of a day; files go to <data dir>/reports/<day>/."""
    settings = settings_of(ctx)
    the_day = _day(day, settings)
    units = [None if u == "*" else u for u in org_units] or None
    audiences = [Audience(audience)] if audience else list(Audience)
    rows = asyncio.run(_generate(database_url(settings), settings, the_day, units, audiences, send))
    table = Table("id", "org unit", "audience", "people", "present", "fevers", "new iso.", "sent")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)
    click.echo(f"files: {reports_dir(settings) / the_day.isoformat()}", err=True)


async def _generate(
    dsn: str,
    settings: Settings,
    day: date,
    units: list[str | None] | None,
    audiences: list[Audience],
    send: bool,
) -> list[tuple[Any, ...]]:
    async with open_database(dsn) as conn:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task("reports", total=None)

            def tick(done: int, total: int, what: str) -> None:
                progress.update(task, completed=done, total=total, description=what)

            try:
                reports = await generate_reports(
                    conn,
                    day=day,
                    settings=settings,
                    by="cli",
                    org_units=units,
                    audiences=audiences,
                    send=send,
                    write_files=True,
                    progress=tick,
                )
            except (UnknownOrgUnitError, ValueError) as exc:
                raise click.ClickException(str(exc)) from None
            except OSError as exc:  # the reports are stored; only their files are missing
                raise click.ClickException(
                    f"reports stored, but their files could not be written under "
                    f"{reports_dir(settings)}: {exc.strerror or exc}"
                ) from None
        deliveries = await store.deliveries_of(conn, [r.id for r in reports])
    rows = []
    for r in reports:
        mine = [d for d in deliveries if d.report_id == r.id]
        sent = f"{sum(d.status == 'ok' for d in mine)}/{len(mine)}" if send else "-"
        s = r.summary
        rows.append(
            (r.id, r.org_unit_id or "campus", r.audience.value, s["people"], s["present"],
             s["fevers"], s["new_isolations"], sent)
        )  # fmt: skip
    return rows


@command.command("list")
@click.option("--day", default=None, help="only this day (YYYY-MM-DD)")
@click.option("--org-unit", default=None, help="only this org unit ('*': the campus)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def list_(ctx: click.Context, day: str | None, org_unit: str | None, limit: int) -> None:
    """Stored reports, newest first, with their deliveries."""
    settings = settings_of(ctx)
    the_day = _day(day, settings) if day else None
    units = None if org_unit is None else [None if org_unit == "*" else org_unit]
    rows = asyncio.run(_list(database_url(settings), the_day, units, limit))
    table = Table("id", "day", "org unit", "audience", "generated", "by", "delivered")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


async def _list(
    dsn: str, day: date | None, units: list[str | None] | None, limit: int
) -> list[tuple[Any, ...]]:
    async with open_database(dsn) as conn:
        reports = await store.list_reports(conn, day=day, org_units=units, limit=limit)
        deliveries = await store.deliveries_of(conn, [r.id for r in reports])
    rows = []
    for r in reports:
        mine = [d for d in deliveries if d.report_id == r.id]
        ok, failed = sum(d.status == "ok" for d in mine), sum(d.status == "failed" for d in mine)
        rows.append(
            (r.id, r.day, r.org_unit_id or "campus", r.audience.value,
             r.generated_at.isoformat(timespec="seconds"), r.generated_by,
             f"{ok} ok, {failed} failed" if mine else "-")
        )  # fmt: skip
    return rows


@command.command("send")
@click.argument("report_id", type=click.IntRange(1, 2**63 - 1))  # a bigint id
@click.option("--only-failed", is_flag=True, help="only recipients whose last try failed")
@click.pass_context
def send(ctx: click.Context, report_id: int, only_failed: bool) -> None:
    """Send (again) a stored report to its audience's recipients."""
    settings = settings_of(ctx)
    done = asyncio.run(_send(database_url(settings), settings, report_id, only_failed))
    if not done:
        click.echo("no recipients: set CAMPUSGATE_REPORT_RECIPIENTS", err=True)
    for d in done:
        click.echo(f"{d.status}\t{d.recipient}\t{d.error or ''}".rstrip())
    if any(d.status == "failed" for d in done):
        raise click.ClickException("some deliveries failed; they are retried by the next run")


async def _send(dsn: str, settings: Settings, report_id: int, only_failed: bool) -> list[Any]:
    async with open_database(dsn) as conn:
        try:
            return await send_report(conn, report_id, settings, by="cli", only_failed=only_failed)
        except ReportNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
