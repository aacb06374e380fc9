"""`campusgate checkin-bench`: the morning's daily check-ins, through the real HTTP API.

A command of its own (like trace-bench), not a mode of `bench`: `bench` drives doors over
a broker, this drives people's phones over HTTP, and it needs a scratch database for its
people. It adds `--people` students (ids `CKB…`), opens each a session as a campus's
single sign-on would (CAS: no password to hash), starts the API in a process of its own
as `serve` does, and has `--concurrency` clients submit one check-in per person. It prints
progress, throughput, latency p50/p95/p99, errors, how many check-ins the database holds,
and how long they took against the morning hour they must fit in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
import httpx

from gateway.cli import fail, settings_of
from gateway.cli._database import database_url, open_database
from gateway.cli.api_process import ApiProcess, ApiProcessError, api_socket, console_url
from gateway.cli.runtime import run
from gateway.domain.checkin import campus_day
from gateway.services.person_accounts import cas_account, open_session
from gateway.settings import Settings
from gateway.store.checkins import checkins_of_day
from gateway.store.roster_write import any_exists, copy_new_people

ID_PREFIX = "CKB"
HOUR_S = 3600.0
PROGRESS_EVERY = 1000
HTTP_TIMEOUT_S = 60.0
SESSION_BATCH = 500


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def person_ids(people: int) -> list[str]:
    return [f"{ID_PREFIX}{n:06d}" for n in range(1, people + 1)]


async def make_sessions(conn: Any, ids: list[str]) -> list[str]:
    """The people (students) and a bearer token each."""
    await copy_new_people(conn, [(pid, "student", f"Bench Student {pid}") for pid in ids])
    tokens = []
    for start in range(0, len(ids), SESSION_BATCH):
        async with conn.transaction():  # one commit per batch, not per person
            for pid in ids[start : start + SESSION_BATCH]:
                account = await cas_account(conn, pid)
                tokens.append((await open_session(conn, account, "cas")).token)
    return tokens


def checkin_body(rng: random.Random) -> dict[str, Any]:
    """A plausible morning: most on campus and well, a few off campus or warm."""
    if rng.random() < 0.9:
        place: dict[str, Any] = {"location": "on_campus", "dormitory": f"dorm-{rng.randint(1, 40)}"}
    else:
        place = {"location": "off_campus", "city": rng.choice(["Beijing", "Shanghai", "Wuhan"])}
    return {**place, "temperature_c": round(rng.gauss(36.5, 0.25), 1), "symptoms": []}


async def submit_all(
    url: str, tokens: list[str], concurrency: int, seed: int
) -> tuple[Tally, float]:
    """Every token checks in once, `concurrency` at a time; the tally and the seconds."""
    tally = Tally()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for token in tokens:
        queue.put_nowait(token)
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S, limits=limits) as http:

        async def client() -> None:
            while not queue.empty():
                token = queue.get_nowait()
                sent = time.perf_counter()
                try:
                    answer = await http.post(
                        "/api/me/checkin",
                        json=checkin_body(rng),
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError as exc:
                    tally.error(type(exc).__name__)
                    continue
                tally.latencies_s.append(time.perf_counter() - sent)
                if answer.status_code != 200:
                    tally.error(f"HTTP {answer.status_code}")
                done = len(tally.latencies_s)
                if done % PROGRESS_EVERY == 0:
                    click.echo(
                        f"  {done}/{len(tokens)} check-ins, "
                        f"{done / (time.perf_counter() - started):.0f}/s",
                        err=True,
                    )

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return tally, time.perf_counter() - started


def _quantile(values: list[float], q: int) -> float:
    """The q-th percentile of sorted `values` (nan when there are none)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(people: int, concurrency: int, tally: Tally, seconds: float, stored: int) -> str:
    lat = sorted(tally.latencies_s)
    ms = {q: _quantile(lat, q) * 1000 for q in (50, 95, 99)}
    errors = sum(tally.errors.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items()))
    return "\n".join(
        [
            f"check-ins: {people} people, concurrency {concurrency}",
            f"took: {seconds:.1f} s ({seconds / HOUR_S:.1%} of the morning hour)",
            f"throughput: {people / seconds:.0f} check-ins/s",
            f"latency: p50 {ms[50]:.0f} ms, p95 {ms[95]:.0f} ms, p99 {ms[99]:.0f} ms",
            f"errors: {errors}" + (f" ({detail})" if detail else ""),
            f"stored: {stored} of {people} check-ins in the database",
        ]
    )


async def _bench(settings: Settings, dsn: str, people: int, concurrency: int, seed: int) -> str:
    ids = person_ids(people)
    async with open_database(dsn) as conn:
        if await any_exists(conn, "people", ids):
            fail(f"the roster already holds bench ids ({ID_PREFIX}…): use a scratch database")
        click.echo(f"adding {people} people and their sessions ...", err=True)
        made = time.perf_counter()
        tokens = await make_sessions(conn, ids)
        click.echo(f"  done in {time.perf_counter() - made:.1f} s", err=True)
    sock = api_socket(settings, any_port_if_busy=True)
    api = ApiProcess(settings, dsn, sock)
    try:
        try:
            await api.start()
        except ApiProcessError as exc:
            fail(str(exc))
        click.echo(f"API process {api.pid} at {console_url(sock)}; submitting ...", err=True)
        tally, seconds = await submit_all(console_url(sock), tokens, concurrency, seed)
    finally:
        with contextlib.suppress(ApiProcessError):
            await api.stop()
        sock.close()
    async with open_database(dsn) as conn:
        day = campus_day(datetime.now(UTC), settings.tz)
        today = await checkins_of_day(conn, day, settings.fever_threshold_c)
    stored = sum(1 for pid in ids if pid in today)
    return report(people, concurrency, tally, seconds, stored)


@click.command()
@click.option("--people", default=10_000, show_default=True, type=click.IntRange(1, 200_000))
@click.option(
    "--concurrency",
    default=50,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="phones submitting at once",
)
@click.option("--seed", default=2020, show_default=True, type=int)
@click.pass_context
def command(ctx: click.Context, people: int, concurrency: int, seed: int) -> None:
    """Submit one daily check-in per person through the HTTP API, concurrently, and time it
    (use a scratch database: it adds people)."""
    settings = settings_of(ctx)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per check-in
    dsn = database_url(settings)
    click.echo(run(lambda: _bench(settings, dsn, people, concurrency, seed)))
