"""`campusgate bench --workers N`: the bench's load against 1, 2, ..., N partitioned workers.

For each k the bench starts k `campusgate worker` processes on the same broker and
database, waits until the partitions are balanced over them (the leases in PostgreSQL),
measures the same load as the other phases, and stops them cleanly before the next k.
Each k has a topic prefix and partition-session client ids of its own, so no event of
one step is queued for, or decided by, the sessions of another.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from devices.transports.mqtt import BrokerAddress, MqttClient, MqttError
from firmware_sim.load_driver import BenchError, ChildProcess, LoadSpec, Phase, PhaseResult
from gateway.store.db import connect
from gateway.store.partition_leases import live_holders

MAX_WORKERS = 16  # beyond this a single host measures only its own contention
BALANCE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WorkersStep:
    """What one k measured: `result` (None when the step failed) and how long the
    partitions took to balance over the k workers."""

    workers: int
    result: PhaseResult | None
    balanced_s: float | None = None

    def figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"workers": self.workers, "balanced_s": self.balanced_s}
        if self.result is not None:
            figures |= self.result.as_contract()
            figures["cpu_us_per_decision"] = self.result.cpu_us_per_decision
        return figures


@dataclass(frozen=True)
class WorkersPlan:
    """Where the workers of each step run and how they split the campus."""

    base_env: Mapping[str, str]  # the spawned gateway's environment (broker, database, ...)
    topic_prefix: str
    partitions: int
    lease_s: float
    logs: Path
    broker: BrokerAddress  # the workers' broker, as the bench reaches it

    def session_id(self, k: int, partition: int) -> str:
        return f"campusgate-bench-w{k}-p{partition}"

    def prefix(self, k: int) -> str:
        return f"{self.topic_prefix}-w{k}"

    def worker_id(self, k: int, i: int) -> str:
        return f"campusgate-bench-w{k}-{i}"

    def env(self, k: int) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(
            CAMPUSGATE_TOPIC_PREFIX=self.prefix(k),
            CAMPUSGATE_PARTITIONS=str(self.partitions),
            CAMPUSGATE_PARTITION_LEASE_S=f"{self.lease_s:g}",
            # Client ids of this step's partition sessions: a dormant session of another
            # step (the broker keeps them) must not be handed this step's events.
            CAMPUSGATE_PARTITION_CLIENT_PREFIX=self.session_id(k, 0)[:-1],
        )
        return env

    def children(self, k: int) -> list[ChildProcess]:
        return [
            ChildProcess(
                f"worker {i + 1} of {k}",
                [sys.executable, "-m", "gateway", "worker", "--worker-id", self.worker_id(k, i)],
                env=self.env(k),
                log_path=self.logs / f"workers-{k}-{i + 1}.log",
            )
            for i in range(k)
        ]


def check_workers(workers: int) -> None:
    """`--workers`'s range, said plainly."""
    if workers < 1:
        raise BenchError(f"--workers must be at least 1 (got {workers})")
    if workers > MAX_WORKERS:
        raise BenchError(
            f"--workers must be at most {MAX_WORKERS} (got {workers}): the workers run on "
            "this one host beside the broker, the database and the simulated doors"
        )


async def check_no_other_workers(dsn: str) -> None:
    """Leases are campus-wide, not per topic prefix: workers already serving this
    database would lose partitions to the bench's, and stop deciding their doors."""
    held = await _holders(dsn)
    if held:
        owners = ", ".join(sorted(set(held.values())))
        raise BenchError(
            f"partitions of this database are held by running workers ({owners}): the "
            "bench's workers would take them over; stop those or bench another database"
        )


async def run_steps(
    plan: WorkersPlan,
    most: int,
    phase_for: Callable[[int, Callable[[], float | None]], Phase],
    console: Console,
) -> tuple[list[WorkersStep], str | None]:
    """k = 1..most workers in turn; the failure (which ends the steps) if any."""
    steps: list[WorkersStep] = []
    for k in range(1, most + 1):
        step, failure = await _step(plan, k, phase_for, console)
        steps.append(step)
        if failure is not None:
            return steps, failure
    return steps, None


async def _step(
    plan: WorkersPlan,
    k: int,
    phase_for: Callable[[int, Callable[[], float | None]], Phase],
    console: Console,
) -> tuple[WorkersStep, str | None]:
    children = plan.children(k)
    balanced_s: float | None = None
    result: PhaseResult | None = None
    failure: str | None = None
    try:
        await _end_sessions(plan, k)
        console.print(f"{k} worker(s): starting, topic prefix {plan.prefix(k)}", highlight=False)
        for child in children:
            await child.start()
        started = time.monotonic()
        ids = {plan.worker_id(k, i) for i in range(k)}
        counts = await _watched(children, _wait_balanced(plan, ids))
        balanced_s = round(time.monotonic() - started, 1)
        shown = ", ".join(str(n) for n in sorted(counts.values(), reverse=True))
        console.print(
            f"{k} worker(s): {plan.partitions} partitions balanced ({shown}) in {balanced_s} s",
            highlight=False,
        )
        phase = phase_for(k, lambda: _cpu_sum(children))
        result = await _watched(children, _run(phase))
    except BenchError as exc:
        logs = ", ".join(str(c.log_path) for c in children)
        failure = f"{k} worker(s) failed: {exc} (logs: {logs})"
    finally:
        console.print(f"{k} worker(s): stopping", highlight=False)
        statuses = await asyncio.gather(*(c.stop(STOP_TIMEOUT_S) for c in children))
    bad = [(c, s) for c, s in zip(children, statuses, strict=True) if s not in (0, None)]
    if failure is None and bad:
        child, status = bad[0]
        failure = (
            f"{child.name} exited with status {status} when stopped: {child.tail()} "
            f"(log: {child.log_path})"
        )
    return WorkersStep(k, result, balanced_s), failure


async def _end_sessions(plan: WorkersPlan, k: int) -> None:
    """End this step's partition sessions of an earlier run: the broker keeps them with
    the events their workers had not taken, which this step's workers would decide first."""

    async def end(partition: int) -> None:
        client = MqttClient(plan.broker, client_id=plan.session_id(k, partition), clean_start=True)
        try:
            await client.connect(5.0)
        except MqttError as exc:
            raise BenchError(f"cannot end the bench's earlier partition sessions: {exc}") from None
        await client.close()

    for first in range(0, plan.partitions, 16):  # a few at a time: the broker serves the doors too
        await asyncio.gather(*(end(p) for p in range(first, min(first + 16, plan.partitions))))


async def _watched(children: list[ChildProcess], work: Awaitable[Any]) -> Any:
    """`work`, failing early if any of the workers exits meanwhile."""
    for child in children:
        work = child.watch(work)
    return await work


async def _run(phase: Phase) -> PhaseResult:
    try:
        return await phase.run()
    except MqttError as exc:
        raise BenchError(f"{phase.name}: {exc}") from None


async def _wait_balanced(plan: WorkersPlan, ids: set[str]) -> Counter[str]:
    """Until every partition is held by one of `ids`, all of them hold some, and none
    more than its share; the partitions each holds."""
    share = -(-plan.partitions // len(ids))
    deadline = time.monotonic() + BALANCE_TIMEOUT_S + 4 * plan.lease_s
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        held = await _holders(plan.base_env["CAMPUSGATE_DATABASE_URL"])
        counts = Counter(w for p, w in held.items() if p < plan.partitions)
        if (
            sum(counts.values()) == plan.partitions
            and set(counts) == ids
            and max(counts.values()) <= share
        ):
            return counts
        await asyncio.sleep(0.2)
    raise BenchError(
        f"the partitions were not balanced over {len(ids)} workers in time: {dict(counts)}"
    )


async def _holders(dsn: str) -> dict[int, str]:
    try:
        conn = await connect(dsn, timeout=10.0)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot read the partition leases: {exc}") from None
    try:
        return await live_holders(conn)
    finally:
        await conn.close()


def _cpu_sum(children: list[ChildProcess]) -> float | None:
    """The workers' CPU seconds together (None off Linux)."""
    used = [c.cpu_s() for c in children]
    return None if any(u is None for u in used) else sum(u for u in used if u is not None)


def print_table(
    spec: LoadSpec,
    steps: list[WorkersStep],
    echo: PhaseResult | None,
    fmt: Callable[[float | None], str],
) -> None:
    load = "saturation" if not spec.open_loop else f"{spec.rate:g}/s"
    table = Table(
        title=f"campusgate bench --workers: {spec.doors} doors, {load}, {spec.duration_s:g} s"
    )
    columns = ("workers", "sent", "decided", "lost", "per_s", "p50 ms", "p95 ms", "p99 ms")
    for column in (*columns, "CPU us/decision"):
        table.add_column(column, justify="left" if column == "workers" else "right")
    rows: list[tuple[str, PhaseResult | None]] = [(str(s.workers), s.result) for s in steps]
    rows.append(("echo", echo))
    for name, result in rows:
        if result is None:
            table.add_row(name, "failed", *[""] * 7)
            continue
        table.add_row(
            name,
            str(result.sent),
            str(result.decided),
            str(result.lost),
            f"{result.per_s:,.1f}",
            fmt(result.p50_ms),
            fmt(result.p95_ms),
            fmt(result.p99_ms),
            fmt(result.cpu_us_per_decision) if name != "echo" else "",
        )
    table.caption = "CPU: all of the step's worker processes together, per decision"
    Console().print(table)
