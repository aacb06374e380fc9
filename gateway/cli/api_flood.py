"""An API flood for `campusgate bench --api-flood N`: N clients hammering the operator API
while the doors are measured, to show that API work does not delay door decisions.

The flood runs in a process of its own (`python -m gateway.cli.api_flood`, started by the
bench) at a lower CPU priority (`--flood-priority`): in a deployment the attacker's CPU is
another machine's, so on the bench's own machine the clients should take as little as
possible of the CPU the doors are measured on. Each client loops over the expensive
requests an attacker or a busy office can send: a failed login (an argon2 verification),
the access events page, a person's contact trace as CSV, and a zone's muster list as CSV.

SIGUSR1 pauses the clients (each finishes the request it has sent, then waits), SIGUSR2
resumes them; every request's start and end (CLOCK_MONOTONIC, the bench's `perf_counter`)
is reported, so the bench knows when the API was still serving the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.cli.cpu_priority import apply_cpu_priority

REQUEST_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0  # for answers to requests sent before the flood was stopped
KINDS = frozenset({"login", "events", "trace_csv", "muster_csv"})
FLOOD_PRIORITY = "idle"  # or a niceness (cpu_priority.py): the attacker's CPU is elsewhere


@dataclass
class FloodResult:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0
    # (start, end) of every request answered or failed, CLOCK_MONOTONIC seconds.
    busy: list[tuple[float, float]] = field(default_factory=list)
    cpu_s: float | None = None  # the flood process's own CPU time

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.items()))
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        rate = self.total / self.seconds if self.seconds else 0.0
        return (
            f"API flood: {self.total} requests in {self.seconds:.1f} s ({rate:.1f}/s; {kinds}); "
            f"status {codes}; {self.errors} transport errors"
        )


class ApiFlood:
    """`clients` concurrent clients against `base_url` until stopped."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        clients: int,
        person: str,
        zone: str,
        kinds: frozenset[str] = KINDS,
    ) -> None:
        unknown = kinds - KINDS
        if unknown or not kinds:
            raise ValueError(f"flood request kinds are {', '.join(sorted(KINDS))}")
        self.kinds = kinds
        self.base_url = base_url
        self.token = token
        self.clients = clients
        self.person = person
        self.zone = zone
        self.result = FloodResult()
        # Door latencies with the flood running and frozen (bench --flood-windows).
        self.windows: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0
        self._running = asyncio.Event()
        self._running.set()
        self._stopping = False

    def pause(self) -> None:
        """No new requests until `resume` (those sent are still answered)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def wait_until_up(self, timeout_s: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    await client.get("/api/auth/me")
                    return
                if loop.time() > deadline:
                    raise TimeoutError(f"the API at {self.base_url} did not answer")
                await asyncio.sleep(0.2)

    def start(self) -> None:
        self._started = asyncio.get_running_loop().time()
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self, grace_s: float = STOP_GRACE_S) -> FloodResult:
        """Send no more; wait up to `grace_s` for the answers to requests already sent (so
        they are counted and timed), then give up on the rest."""
        self._stopping = True
        self._running.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.result.seconds = asyncio.get_running_loop().time() - self._started
        return self.result

    async def _client(self, n: int) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        requests = [
            r
            for r in (
                ("login", "POST", "/api/auth/login", None),
                ("events", "GET", "/api/events?limit=500", auth),
                ("trace_csv", "GET", f"/api/tracing/{self.person}?format=csv&days=1", auth),
                ("muster_csv", "GET", f"/api/zones/{self.zone}/muster?format=csv", auth),
            )
            if r[0] in self.kinds
        ]
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            step = n
            while True:
                await self._running.wait()
                if self._stopping:
                    return
                kind, method, path, headers = requests[step % len(requests)]
                step += 1
                body = None
                if kind == "login":
                    body = {"name": f"flood-{secrets.token_hex(4)}", "password": "not the one"}
                sent = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body, headers=headers)
                except httpx.TransportError:
                    self.result.busy.append((sent, time.perf_counter()))
                    self.result.errors += 1
                    await asyncio.sleep(0.1)
                    continue
                self.result.busy.append((sent, time.perf_counter()))
                self.result.requests[kind] += 1
                self.result.statuses[response.status_code] += 1


class FloodProcess:
    """The flood in a child process: start once the API answers, stop, read its result."""

    def __init__(self, flood: ApiFlood, *, priority: str = FLOOD_PRIORITY) -> None:
        self.flood = flood
        self.priority = priority
        self.result = FloodResult()
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await self.flood.wait_until_up()
        f = self.flood
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli.api_flood",
            f.base_url, f.token, str(f.clients), f.person, f.zone,
            "--kinds", ",".join(sorted(f.kinds)), "--priority", self.priority,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        # Its first line says the clients are running (a SIGTERM before that would end
        # it without a tally).
        assert self._process.stdout is not None
        await self._process.stdout.readline()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def pause(self, paused: bool) -> None:
        """Pause (SIGUSR1) or resume (SIGUSR2) the flood's clients: requests already sent
        are still answered, and their end is recorded."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGUSR1 if paused else signal.SIGUSR2)

    async def stop(self) -> FloodResult:
        if self._process is None:
            return self.result
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGTERM)
        out, _ = await self._process.communicate()
        with contextlib.suppress(ValueError):
            document = json.loads(out.decode() or "{}")
            self.result = FloodResult(
                Counter(document.get("requests", {})),
                Counter({int(k): v for k, v in document.get("statuses", {}).items()}),
                int(document.get("errors", 0)),
                float(document.get("seconds", 0.0)),
                [(float(a), float(b)) for a, b in document.get("busy", [])],
                document.get("cpu_s"),
            )
        return self.result


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.cli.api_flood",
        description="Flood the operator API until SIGINT/SIGTERM; print the tally as JSON.",
    )
    parser.add_argument("url")
    parser.add_argument("token", help="an admin's API token (`campusgate user token`)")
    parser.add_argument("clients", type=int)
    parser.add_argument("person", help="whose contact trace to ask for")
    parser.add_argument("zone", help="whose muster list to ask for")
    parser.add_argument("kinds_positional", nargs="?", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kinds", default=None, help=f"comma-separated, of {sorted(KINDS)}")
    parser.add_argument("--priority", default=FLOOD_PRIORITY, help="`idle` or a niceness 0-19")
    return parser.parse_args(argv)


async def _main(argv: list[str]) -> None:
    args = _arguments(argv)
    listed = args.kinds or args.kinds_positional
    kinds = frozenset(listed.split(",")) if listed else KINDS
    applied = apply_cpu_priority(args.priority)
    print(f"API flood process CPU priority: {applied}", file=sys.stderr)
    flood = ApiFlood(
        args.url, args.token, clients=args.clients, person=args.person, zone=args.zone, kinds=kinds
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, flood.pause)
    loop.add_signal_handler(signal.SIGUSR2, flood.resume)
    flood.start()
    print("started", flush=True)
    await stop.wait()
    result = await flood.stop()
    document = {
        "requests": dict(result.requests),
        "statuses": {str(k): v for k, v in result.statuses.items()},
        "errors": result.errors,
        "seconds": result.seconds,
        "busy": [[round(a, 6), round(b, 6)] for a, b in result.busy],
        "cpu_s": round(time.process_time(), 3),
    }
    print(json.dumps(document))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
