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
from gateway.services.importer import ImportReport, ManifestError, import_file
from gateway.services.importer import Progress as ProgressCallback


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--operator", default=None, help="recorded as who set imported health statuses")
@click.option("--quiet", is_flag=True, help="no progress display")
@click.pass_context
def command(ctx: click.Context, file: Path, operator: str | None, quiet: bool) -> None:
    """Import FILE (YAML or JSON manifest, or people CSV); importing it again changes nothing."""
    settings = settings_of(ctx)
    if not file.is_file():
        raise click.ClickException(f"{file}: no such file")
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

        report = asyncio.run(_import(dsn, file, settings.tz, operator, progress))
    _print_report(report)


async def _import(
    dsn: str, file: Path, tz: ZoneInfo, operator: str | None, progress: ProgressCallback
) -> ImportReport:
    async with open_database(dsn) as conn:
        try:
            return await import_file(conn, file, tz=tz, operator=operator, progress=progress)
        except ManifestError as exc:
            raise click.ClickException(f"{exc}; nothing was imported") from None


def _print_report(report: ImportReport) -> None:
    table = Table(title=f"{report.source} imported in {report.seconds:.2f} s")
    for column in ("section", "inserted", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "section" else "right")
    for section, counts in report.sections.items():
        table.add_row(section, str(counts.inserted), str(counts.updated), str(counts.unchanged))
    Console().print(table)
