"""`campusgate retention run [--dry-run] [--mode delete|anonymize]`: retention on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.retention import (
    AccessMode,
    RetentionBusyError,
    RetentionReport,
    run_retention,
)
from gateway.settings import Settings


@click.group("retention")
def command() -> None:
    """Delete or anonymize personal data past its retention period."""


@command.command("run")
@click.option("--dry-run", is_flag=True, help="only count what would go; change nothing")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in AccessMode]),
    default=AccessMode.DELETE.value,
    show_default=True,
    help="old access events: delete them, or keep them without person and card",
)
@click.pass_context
def run(ctx: click.Context, dry_run: bool, mode: str) -> None:
    """Run retention now and print what it removed (or would remove) per table."""
    settings = settings_of(ctx)
    report = asyncio.run(_run(database_url(settings), settings, AccessMode(mode), dry_run))
    verb = "would remove" if report.dry_run else "removed"
    click.echo(f"retention ({report.mode.value} mode) {verb}:")
    for table, count in report.counts.items():
        click.echo(f"  {table:<28} {count:>10}")
    cut = report.cutoffs
    click.echo(
        f"cut-offs: access {cut.access:%Y-%m-%d %H:%M} UTC, health {cut.health:%Y-%m-%d %H:%M}"
        f" UTC, reports {cut.reports:%Y-%m-%d %H:%M} UTC,"
        f" accounts of people gone before {cut.accounts:%Y-%m-%d %H:%M} UTC"
    )


async def _run(dsn: str, settings: Settings, mode: AccessMode, dry_run: bool) -> RetentionReport:
    async with open_database(dsn) as conn:
        try:
            return await run_retention(
                conn, settings, datetime.now(UTC), mode=mode, dry_run=dry_run, requested_by="cli"
            )
        except RetentionBusyError as exc:
            raise click.ClickException(str(exc)) from None
