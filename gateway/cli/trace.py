"""`campusgate trace PERSON`: a person's contacts from the access log, as a table or CSV."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from gateway.cli import fail, settings_of
from gateway.cli._database import database_url, open_database
from gateway.domain.tracing import (
    SECOND_MAX_SEEDS,
    SECOND_MAX_SEEDS_LIMIT,
    SECOND_MIN_EXPOSURE_S,
    TraceResult,
)
from gateway.services.tracing import TraceError, TraceRequest, contacts_csv, trace
from gateway.settings import Settings

OPERATOR = "cli"


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"{flag}: not an RFC 3339 time with offset: {value!r}")
    return None  # unreachable: fail raises


async def _run(settings: Settings, request: TraceRequest) -> TraceResult:
    async with open_database(database_url(settings)) as conn:
        try:
            return await trace(conn, request, settings, by=OPERATOR)
        except TraceError as exc:
            fail(str(exc))
    raise AssertionError("unreachable")


@click.command()
@click.argument("person")
@click.option("--days", type=int, default=None, help="window back from now (default: settings)")
@click.option("--from", "start", default=None, help="window start, RFC 3339 with offset")
@click.option("--to", "end", default=None, help="window end, RFC 3339 with offset")
@click.option("--generations", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="at most this many contacts")
@click.option(
    "--second-min-exposure",
    "second_min_exposure_s",
    type=click.FloatRange(0),
    default=SECOND_MIN_EXPOSURE_S,
    show_default=True,
    help="seconds of exposure a first-generation contact needs to seed the second",
)
@click.option(
    "--second-max-seeds",
    type=click.IntRange(1, SECOND_MAX_SEEDS_LIMIT),
    default=SECOND_MAX_SEEDS,
    show_default=True,
    help="trace the second generation from at most this many (the most exposed)",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the contacts to FILE ('-': standard output)",
)
@click.pass_context
def command(
    ctx: click.Context,
    person: str,
    days: int | None,
    start: str | None,
    end: str | None,
    generations: int,
    limit: int | None,
    second_min_exposure_s: float,
    second_max_seeds: int,
    csv_path: Path | None,
) -> None:
    """Everyone who shared a zone with PERSON, ranked by exposure (audited as `cli`)."""
    settings = settings_of(ctx)
    if csv_path is not None and str(csv_path) != "-" and not csv_path.parent.is_dir():
        fail(f"{csv_path}: directory {csv_path.parent} does not exist")
    request = TraceRequest(
        person,
        start=_when(start, "--from"),
        end=_when(end, "--to"),
        days=days,
        generations=generations,
        limit=limit,
        second_min_exposure_s=second_min_exposure_s,
        second_max_seeds=second_max_seeds,
    )
    result = asyncio.run(_run(settings, request))
    if csv_path is not None:
        text = contacts_csv(result)
        if str(csv_path) == "-":
            click.echo(text, nl=False)
            return
        try:
            csv_path.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{csv_path}: cannot write: {exc.strerror or exc}")
        click.echo(f"{len(result.contacts)} contacts written to {csv_path}", err=True)
        if result.generations == 2:
            click.echo(_seeds_line(result), err=True)
        return
    _print(result, settings)


def _print(result: TraceResult, settings: Settings) -> None:
    w = result.window
    title = (
        f"contacts of {result.person_id} {result.name or ''} "
        f"{w.start.astimezone(settings.tz):%Y-%m-%d %H:%M} - "
        f"{w.end.astimezone(settings.tz):%Y-%m-%d %H:%M}"
    )
    table = Table(title=title)
    columns = ("gen", "person", "name", "exposure min", "encounters", "method", "zones", "via")
    for column in columns:
        table.add_column(column)
    for c in result.contacts:
        table.add_row(
            str(c.generation),
            c.person_id,
            c.name or "",
            f"{c.exposure_s / 60:.0f}",
            str(c.encounters),
            c.method.value,
            ", ".join(c.zones[:4]) + (" …" if len(c.zones) > 4 else ""),
            ", ".join(c.via),
        )
    Console().print(table)
    more = " (truncated by --limit)" if result.truncated else ""
    click.echo(f"{len(result.contacts)} contacts{more}")
    if result.generations == 2:
        click.echo(_seeds_line(result))


def _seeds_line(result: TraceResult) -> str:
    """Which first-generation contacts the second generation was traced from."""
    minutes = result.second_min_exposure_s / 60
    line = (
        f"second generation traced from {len(result.second_seeds)} first-generation "
        f"contact(s) with at least {minutes:g} min exposure"
    )
    if result.second_seeds_truncated:
        left = result.second_seeds_eligible - len(result.second_seeds)
        line += f"; {left} more left out by --second-max-seeds {result.second_max_seeds}"
    return line
