"""`campusgate travel import FILE.csv`: travel declarations collected with forms."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.travel import TravelRules
from gateway.services.travel_import import TravelImportError, import_declarations


@click.group("travel")
def command() -> None:
    """Travel declarations."""


@command.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--operator", default="cli", show_default=True, help="recorded as who declared")
@click.pass_context
def import_command(ctx: click.Context, file: Path, operator: str) -> None:
    """Import FILE (CSV: person_id,destination,departure_date,return_date[,note]); the
    whole file is checked first, and a trip imported again is kept once."""
    settings = settings_of(ctx)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot read the file: {exc}") from None
    rules = TravelRules(settings.isolation_days, settings.tz)
    rows, ids, evaluation = asyncio.run(
        _import(database_url(settings), text, str(file), rules, operator)
    )
    click.echo(
        f"{file}: {rows} rows, {len(ids)} declarations on file; "
        f"isolated {len(evaluation.isolated)}, extended {len(evaluation.extended)}, "
        f"waiting {len(evaluation.waiting)}"
    )


async def _import(dsn: str, text: str, source: str, rules: TravelRules, operator: str):  # type: ignore[no-untyped-def]
    async with open_database(dsn) as conn:
        try:
            return await import_declarations(conn, text, source, rules, by=operator)
        except TravelImportError as exc:
            raise click.ClickException(f"{exc}; nothing was imported") from None
