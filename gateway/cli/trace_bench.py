"""`campusgate trace-bench`: load a simulated month into the access log and time tracing.

Writes into the configured database's access log (ids `S…`/`T…`, zones `dorm-…` and
so on): use a scratch database. Prints rows, load time, how long storing the stays took
(as the campus job would, up to a max stay before now) and p50/max query seconds for
first- and second-generation traces of several index people.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import click

from firmware_sim.presence import SimulatedWeek, simulate
from gateway.cli import fail, settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.tracing import TraceRequest, trace
from gateway.services.tracing_stays import refresh_stays
from gateway.settings import Settings
from gateway.store.access_log import ensure_partition, is_empty, write_access_records
from gateway.store.db import vacuum_analyze
from gateway.store.roster_write import any_exists, copy_new_people


async def load_week(
    conn: asyncpg.Connection,
    week: SimulatedWeek,
    *,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[list[Any], int]:
    """Insert the people, then COPY every simulated day into the access log (partitions first).

    Returns the true visits and the number of rows; `progress(day, days, rows)` per day.
    """
    day = week.start
    while day <= week.window_end + timedelta(days=1):
        await ensure_partition(conn, day.astimezone(UTC))
        day += timedelta(days=27)
    await ensure_partition(conn, (week.window_end + timedelta(days=1)).astimezone(UTC))
    await copy_new_people(conn, [(p.id, p.kind, p.name) for p in week.people])
    visits: list[Any] = []
    rows = 0
    for number, (day_visits, records) in enumerate(week.iter_days()):
        visits += day_visits
        await write_access_records(conn, records)
        rows += len(records)
        if progress is not None:
            progress(number + 1, week.days + 2, rows)
    await vacuum_analyze(conn, "access_events")
    return visits, rows


def _quantiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(statistics.median(values), 3),
        "max_s": round(max(values), 3),
    }


async def _bench(
    dsn: str, settings: Settings, people: int, days: int, queries: int, seed: int
) -> dict[str, Any]:
    async with open_database(dsn) as conn:
        if not await is_empty(conn):
            fail("the access log is not empty: run trace-bench against a scratch database")
        week = simulate(people=people, days=days, seed=seed)
        ids = [p.id for p in week.people]
        if await any_exists(conn, "people", ids):
            fail("the roster already holds simulated ids (S…/T…): use a scratch database")
        click.echo(f"simulating {people} people over {days} days and loading ...", err=True)
        started = time.perf_counter()

        def show(day: int, total: int, rows: int) -> None:
            click.echo(f"  day {day}/{total}: {rows:,} rows", err=True)

        _, rows = await load_week(conn, week, progress=show)
        load_s = time.perf_counter() - started
        click.echo("materializing stays ...", err=True)
        started = time.perf_counter()
        stored = await refresh_stays(conn, settings, datetime.now(UTC))
        await vacuum_analyze(conn, "presence_stays")
        stays_s = time.perf_counter() - started
        rng = random.Random(seed)
        chosen = rng.sample([p.id for p in week.people], min(queries, len(week.people)))
        figures: dict[str, Any] = {
            "people": people,
            "days": days,
            "rows": rows,
            "load_s": round(load_s, 1),
            "rows_per_s": round(rows / load_s),
            "stays": stored["stays"],
            "stays_upto": stored["upto"],
            "stays_s": round(stays_s, 1),
        }
        for generations in (1, 2):
            seconds: list[float] = []
            found: list[int] = []
            for person in chosen:
                request = TraceRequest(
                    person,
                    start=week.window_start,
                    end=week.window_end,
                    generations=generations,
                )
                t0 = time.perf_counter()
                result = await trace(conn, request, settings, by="trace-bench")
                seconds.append(time.perf_counter() - t0)
                found.append(len(result.contacts))
                click.echo(
                    f"  generation {generations}: {person} {len(result.contacts)} contacts "
                    f"in {seconds[-1]:.2f} s",
                    err=True,
                )
            figures[f"generation_{generations}"] = {
                **_quantiles(seconds),
                "queries": len(seconds),
                "contacts_median": int(statistics.median(found)),
            }
    return figures


@click.command()
@click.option("--people", type=click.IntRange(50, 200_000), default=20_000, show_default=True)
@click.option("--days", type=click.IntRange(1, 60), default=30, show_default=True)
@click.option(
    "--queries", type=click.IntRange(1, 100), default=5, show_default=True, help="index people"
)
@click.option("--seed", type=int, default=2020, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def command(
    ctx: click.Context, people: int, days: int, queries: int, seed: int, json_path: Path | None
) -> None:
    """Time contact tracing over a simulated month (use a scratch database)."""
    settings = settings_of(ctx)
    if json_path is not None and not json_path.parent.is_dir():
        fail(f"{json_path}: directory {json_path.parent} does not exist")
    dsn = database_url(settings)
    figures = asyncio.run(_bench(dsn, settings, people, days, queries, seed))
    for key in ("people", "days", "rows", "load_s", "rows_per_s", "stays", "stays_upto", "stays_s"):
        click.echo(f"{key:>12}: {figures[key]}")
    for generations in (1, 2):
        g = figures[f"generation_{generations}"]
        click.echo(
            f"generation {generations}: p50 {g['p50_s']} s, max {g['max_s']} s over "
            f"{g['queries']} queries, median {g['contacts_median']} contacts"
        )
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(figures, indent=2) + "\n")
        except OSError as exc:
            fail(f"{json_path}: cannot write: {exc.strerror or exc}")
