"""`campusgate bench --api-flood N --flood-windows S`: door latencies with the API flood
running and paused in the same gateway run, and where the CPU went in each.

The flood is paused and resumed every S seconds. A door event due in a running window
(after its first `settle_s`) counts as flooded; one due in a paused window counts as
quiet only if no flood request was still being answered while it was decided (the API
finishes what was sent before the pause: a slow export can outlast a whole window).

At every window's end the bench reads the CPU time of each part of the run: the gateway
(door loop), the API process, the flood's clients, the bench's own simulated doors, the
broker, PostgreSQL's backends (by `application_name`: the API's, the gateway's) and its
own processes (WAL writer, checkpointer...), and the whole machine; `others` is the
machine's busy time not used by any of these (other tenants of a shared host). It also
reads the database's commits and the server's WAL flushes. Each is reported per second
of running and of paused windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from firmware_sim.load_driver import Window, percentile_ms
from gateway.cli.api_flood import FloodProcess
from gateway.cli.api_process import APPLICATION_NAME as API_APPLICATION
from gateway.store.activity import ServerProcess, commit_counts, server_processes
from gateway.store.db import connect

BENCH_APPLICATION = "campusgate-bench"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def split_by_flood(
    samples: Iterable[tuple[float, float]],
    windows: Sequence[Window],
    busy: Sequence[tuple[float, float]],
    settle_s: float = 0.5,
) -> dict[str, Any]:
    """Latencies (due, seconds) split into `on` (due in a running window) and `off` (due
    in a paused one and decided while no flood request was in flight); `off_overlapped`
    counts the paused-window events left out because the API was still serving the flood."""
    starts, ends = _merged(busy)
    split: dict[bool, list[float]] = {True: [], False: []}
    overlapped = 0
    for due, latency in samples:
        for window in windows:
            if window.start + settle_s <= due < window.end:
                if not window.on and _overlaps(starts, ends, due, due + latency):
                    overlapped += 1
                else:
                    split[window.on].append(latency)
                break
    figures: dict[str, Any] = {}
    for on, latencies in split.items():
        ordered = sorted(latencies)
        figures["on" if on else "off"] = {
            "decided": len(ordered),
            "p50_ms": percentile_ms(ordered, 50),
            "p95_ms": percentile_ms(ordered, 95),
            "p99_ms": percentile_ms(ordered, 99),
        }
    figures["off_overlapped"] = overlapped
    return figures


def _merged(intervals: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Overlapping intervals joined; their starts and ends, sorted."""
    starts: list[float] = []
    ends: list[float] = []
    for start, end in sorted(intervals):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _overlaps(starts: list[float], ends: list[float], start: float, end: float) -> bool:
    i = bisect_right(starts, end) - 1  # the last interval starting at or before `end`
    return i >= 0 and ends[i] >= start


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads); None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all CPUs; steal left out)."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in line.split()[1:8])
    return (user + nice + system + irq + softirq) / _CLK_TCK


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (the API process under `serve`, and its helpers)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry.name))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


@dataclass
class Snapshot:
    at: float
    cpu: dict[int, tuple[str, float]]  # pid -> (part, CPU seconds so far)
    machine_s: float | None
    commits: int | None
    wal_syncs: int | None


@dataclass
class CpuAccounts:
    """Per-window CPU of each part of the run (see the module's docstring)."""

    dsn: str
    parts: dict[str, Callable[[], list[int]]]  # part -> its pids now
    # `--split-cpus`: part -> the CPUs its processes (every thread) are kept on, applied at
    # every snapshot so that connections and threads made since are placed too.
    placement: dict[str, frozenset[int]] = field(default_factory=dict)
    placed: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # part -> pids
    _original: dict[int, set[int]] = field(default_factory=dict)  # thread -> CPUs before
    _conn: asyncpg.Connection | None = None
    _last: Snapshot | None = None
    totals: dict[bool, dict[str, float]] = field(
        default_factory=lambda: {True: defaultdict(float), False: defaultdict(float)}
    )
    seconds: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})

    async def open(self) -> None:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            self._conn = await connect(
                self.dsn, timeout=10.0, server_settings={"application_name": BENCH_APPLICATION}
            )
        self._last = await self._snapshot()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        unpin(self._original)

    async def window_ended(self, on: bool) -> None:
        """Charge what was used since the last call to a running (`on`) or paused window."""
        now = await self._snapshot()
        last, self._last = self._last, now
        if last is None:
            return
        totals = self.totals[on]
        self.seconds[on] += now.at - last.at
        for pid, (part, cpu_s) in now.cpu.items():
            before = last.cpu.get(pid)
            totals[part] += cpu_s - (before[1] if before is not None else 0.0)
        if now.machine_s is not None and last.machine_s is not None:
            totals["machine"] += now.machine_s - last.machine_s
        for name in ("commits", "wal_syncs"):
            a, b = getattr(last, name), getattr(now, name)
            if a is not None and b is not None:
                totals[name] += b - a

    def figures(self) -> dict[str, dict[str, float]]:
        """Per second of running (`on`) and paused (`off`) windows: cores used by each part
        (and `others`), commits and WAL flushes."""
        out: dict[str, dict[str, float]] = {}
        for on, totals in self.totals.items():
            seconds = self.seconds[on]
            if not seconds:
                continue
            rates = {part: value / seconds for part, value in totals.items()}
            if "machine" in rates:
                ours = sum(
                    v for k, v in rates.items() if k not in ("machine", "commits", "wal_syncs")
                )
                rates["others"] = rates["machine"] - ours
            out["on" if on else "off"] = {k: round(v, 3) for k, v in sorted(rates.items())}
        if self.placement:
            # How many processes of each part were kept on their side (--split-cpus).
            out["placed"] = {part: float(len(pids)) for part, pids in sorted(self.placed.items())}
        return out

    async def _snapshot(self) -> Snapshot:
        at = time.perf_counter()
        pids: dict[int, str] = {}
        for part, find in self.parts.items():
            for pid in find():
                pids.setdefault(pid, part)
        commits = wal_syncs = None
        if self._conn is not None:
            try:
                for process in await server_processes(self._conn):
                    pids.setdefault(process.pid, _server_part(process))
                counts = await commit_counts(self._conn)
                commits, wal_syncs = counts.commits, counts.wal_syncs
            except (asyncpg.PostgresError, OSError):
                pass
        for pid, part in pids.items():
            if part in self.placement and pin_process(pid, self.placement[part], self._original):
                self.placed[part].add(pid)
        cpu: dict[int, tuple[str, float]] = {}
        for pid, part in pids.items():
            used = _process_cpu_s(pid)  # None for a server on another host or namespace
            if used is not None:
                cpu[pid] = (part, used)
        return Snapshot(at, cpu, _machine_busy_s(), commits, wal_syncs)


# `--split-cpus DOOR:API`: which side of the machine each part of the run is kept on.
DOOR_SIDE = ("gateway", "bench", "broker", "postgres_gateway", "postgres_server")
API_SIDE = ("api", "flood", "postgres_api")


def split_placement(
    door_cpus: frozenset[int], api_cpus: frozenset[int]
) -> dict[str, frozenset[int]]:
    """The door path (gateway, simulated doors, broker, the gateway's PostgreSQL backends and
    the server's own processes) on `door_cpus`; the API, its flood and its backends on
    `api_cpus`: what a host that gives the API cores of its own would do."""
    return {part: door_cpus for part in DOOR_SIDE} | {part: api_cpus for part in API_SIDE}


def pin_process(pid: int, cpus: frozenset[int], original: dict[int, set[int]]) -> bool:
    """Keep every thread of `pid` on `cpus` (affinity is per thread on Linux); whether any
    was placed. Each thread's affinity before its first move is kept in `original` (to
    give back: PostgreSQL's own processes outlive the bench). A process or thread gone
    meanwhile, or one this user may not move, is left as it is."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    placed = False
    for tid in tids:
        with contextlib.suppress(OSError):
            before = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
            original.setdefault(tid, before)
            placed = True
    return placed


def unpin(original: dict[int, set[int]]) -> None:
    """Give the threads moved by `pin_process` their affinity back (those still there)."""
    for tid, cpus in original.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
    original.clear()


def _server_part(process: ServerProcess) -> str:
    if not process.own_database:
        return "postgres_server"
    if process.application == API_APPLICATION:
        return "postgres_api"
    if process.application == BENCH_APPLICATION:
        return "bench"
    return "postgres_gateway"


async def flooded(
    work: Any,
    process: FloodProcess | None,
    windows_s: float = 0.0,
    windows: list[Window] | None = None,
    accounts: CpuAccounts | None = None,
) -> Any:
    """Await `work` with the flood running; with `windows_s`, the flood is paused and
    resumed every `windows_s` seconds instead, and each stretch appended to `windows`."""
    if process is None:
        return await work
    await process.start()
    toggler = None
    if windows_s > 0 and windows is not None:
        toggler = asyncio.create_task(alternate(process, windows_s, windows, accounts))
    try:
        return await work
    finally:
        if toggler is not None:
            toggler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await toggler
        process.flood.result = await process.stop()


async def alternate(
    process: FloodProcess,
    every_s: float,
    windows: list[Window],
    accounts: CpuAccounts | None = None,
) -> None:
    if accounts is not None:
        await accounts.open()
    on, start = True, time.perf_counter()
    try:
        while True:
            await asyncio.sleep(every_s)
            now = time.perf_counter()
            windows.append(Window(start, now, on))
            process.pause(on)
            if accounts is not None:
                await accounts.window_ended(on)
            on, start = not on, now
    finally:
        windows.append(Window(start, time.perf_counter(), on))
        if accounts is not None:
            await accounts.close()
