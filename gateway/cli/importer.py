"""`campusgate import FILE`: load a campus manifest or a people CSV."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.importer import (
    DEFAULT_MAX_DEACTIVATE_SHARE,
    ImportReport,
    ManifestError,
    SyncOptions,
    import_file,
    refused_share,
)
from gateway.services.importer import Progress as ProgressCallback

SHOWN_IDS = 50  # a dry run lists this many of the people it would deactivate, then a count


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--operator", default=None, help="recorded as who set imported health statuses")
@click.option("--quiet", is_flag=True, help="no progress display")
@click.option(
    "--sync",
    is_flag=True,
    help="FILE is the full export: deactivate the people of its kinds it leaves out",
)
@click.option("--dry-run", is_flag=True, help="with --sync: write nothing, list who would go")
@click.option(
    "--max-deactivate-share",
    type=click.FloatRange(0, 1),
    default=DEFAULT_MAX_DEACTIVATE_SHARE,
    show_default=True,
    help="with --sync: refuse to deactivate more than this share of the active people",
)
@click.pass_context
def command(
    ctx: click.Context,
    file: Path,
    operator: str | None,
    quiet: bool,
    sync: bool,
    dry_run: bool,
    max_deactivate_share: float,
) -> None:
    """Import FILE (YAML or JSON manifest, or people .csv/.xlsx); importing it again changes nothing.

    People CSVs may be UTF-8 (with or without BOM) or GBK/GB18030; an .xlsx workbook is
    read from its first sheet, with the same header as the CSV.
    """
    settings = settings_of(ctx)
    if not file.is_file():
        raise click.ClickException(f"{file}: no such file")
    if dry_run and not sync:
        raise click.ClickException("--dry-run goes with --sync (it previews the deactivations)")
    options = SyncOptions(dry_run, max_deactivate_share) if sync else None
    dsn = database_url(settings)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.completed:>7}/{task.total:<7}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = asyncio.run(_import(dsn, file, settings.tz, operator, progress, options))
    _print_report(report)
    if report.sync is not None:
        _print_sync(report, max_deactivate_share)


async def _import(
    dsn: str,
    file: Path,
    tz: ZoneInfo,
    operator: str | None,
    progress: ProgressCallback,
    sync: SyncOptions | None,
) -> ImportReport:
    async with open_database(dsn) as conn:
        try:
            return await import_file(
                conn, file, tz=tz, operator=operator, progress=progress, sync=sync
            )
        except ManifestError as exc:
            raise click.ClickException(f"{exc}; nothing was imported") from None


def _print_sync(report: ImportReport, max_share: float) -> None:
    sync = report.sync
    assert sync is not None
    kinds = "/".join(sync.kinds)
    gone = sync.deactivated
    verb = "would deactivate" if report.dry_run else "deactivated"
    click.echo(
        f"sync of {kinds}: {verb} {len(gone)} of {sync.active} "
        f"active {kinds} absent from {report.source}"
    )
    for person in gone[:SHOWN_IDS]:
        click.echo(f"  {person}")
    if len(gone) > SHOWN_IDS:
        click.echo(f"  ... and {len(gone) - SHOWN_IDS} more")
    if report.dry_run:
        if refused_share(sync, max_share):
            click.echo(
                f"a real run would be refused: more than {max_share:.0%} of the active {kinds}; "
                "check the export is complete before raising --max-deactivate-share"
            )
        click.echo("dry run: nothing was written")


def _print_report(report: ImportReport) -> None:
    what = "checked (dry run)" if report.dry_run else "imported"
    table = Table(title=f"{report.source} {what} in {report.seconds:.2f} s")
    for column in ("section", "inserted", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "section" else "right")
    for section, counts in report.sections.items():
        table.add_row(section, str(counts.inserted), str(counts.updated), str(counts.unchanged))
    Console().print(table)
