"""`campusgate export PERSON --out FILE`: everything held about one person, as JSON."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.person_export import PersonNotFoundError, export_person


@click.command("export")
@click.argument("person")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="the JSON file to write ('-' for standard output)",
)
@click.option("--operator", default=None, help="recorded in the audit log (default: cli:USER)")
@click.pass_context
def command(ctx: click.Context, person: str, out: Path, operator: str | None) -> None:
    """Export everything held about PERSON (person id) to a JSON file; the export is audited."""
    if str(out) != "-" and not out.parent.is_dir():
        raise click.ClickException(f"{out}: no such directory {out.parent}")
    by = operator or f"cli:{getpass.getuser()}"
    document = asyncio.run(_export(database_url(settings_of(ctx)), person, by))
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if str(out) == "-":
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"exported person {person!r} to {out}", err=True)


async def _export(dsn: str, person: str, by: str) -> dict[str, Any]:
    async with open_database(dsn) as conn:
        try:
            return await export_person(conn, person, by=by, now=datetime.now(UTC))
        except PersonNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
