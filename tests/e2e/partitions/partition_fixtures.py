"""Several real `campusgate worker` processes on one broker and one database (issue 14).

The broker is a parameter: `BrokerUnderTest.urls` lists its URLs (one for the Mosquitto of
tests/broker_fixtures.py; a clustered broker fixture gives several). The workers are driven
from outside, as an operator would: spawned, SIGKILLed, SIGTERMed, restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from firmware_sim.campus import Campus
from firmware_sim.fleet import Fleet
from gateway.domain.partitions import device_partition

PARTITIONS = 64
LEASE_S = 3.0


@dataclass(frozen=True)
class BrokerUnderTest:
    """The broker the workers and the simulated doors use: one URL per node."""

    urls: list[str]
    protocol: str | None = None  # "3.1.1" for NATS

    @property
    def url(self) -> str:
        """What the workers and terminals are given: every node, comma-separated, as
        CAMPUSGATE_MQTT_URL takes them (with the protocol when not MQTT 5)."""
        joined = ",".join(self.urls)
        return f"{joined}?protocol={self.protocol}" if self.protocol else joined


@dataclass
class Workers:
    """`campusgate worker` processes of one test: index -> process, logs under `folder`."""

    dsn: str
    broker: BrokerUnderTest
    prefix: str
    folder: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    def log(self, n: int) -> Path:
        return self.folder / f"worker-{n}.log"

    def worker_id(self, n: int) -> str:
        return f"w{n}-{self.prefix}"

    def spawn(
        self,
        n: int,
        *,
        explicit_id: bool = True,
        dsn: str | None = None,
        serve: bool = False,
        settings: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        env = {
            **os.environ,
            "CAMPUSGATE_DATABASE_URL": dsn or self.dsn,
            "CAMPUSGATE_MQTT_URL": self.broker.url,
            "CAMPUSGATE_TOPIC_PREFIX": self.prefix,
            "CAMPUSGATE_LOG_LEVEL": "INFO",
            "CAMPUSGATE_METRICS_PORT": "0",
            "CAMPUSGATE_PARTITIONS": str(PARTITIONS),
            "CAMPUSGATE_PARTITION_LEASE_S": str(LEASE_S),
            # Sessions of this test only: the broker is shared by the whole test session.
            "CAMPUSGATE_PARTITION_CLIENT_PREFIX": f"{self.prefix}-p",
            **self.extra_env,
            **(settings or {}),
        }
        args = [sys.executable, "-m", "gateway", "worker"]
        if explicit_id:
            args += ["--worker-id", self.worker_id(n)]
        if serve:  # `serve --partitioned`: the API and jobs beside a worker's share
            env["CAMPUSGATE_API_PORT"] = str(_free_port())
            args = [sys.executable, "-m", "gateway", "serve", "--partitioned"]
            args += ["--client-id", self.worker_id(n)]
        with self.log(n).open("ab") as sink:
            proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
        self.procs[n] = proc
        return proc

    def kill(self, n: int) -> None:
        proc = self.procs.pop(n)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, n: int, timeout: float = 30) -> int:
        proc = self.procs.pop(n)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def stop_all(self) -> None:
        for n in list(self.procs):
            proc = self.procs.pop(n)
            proc.send_signal(signal.SIGTERM)
        # (waited for by the caller's `close`)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def tail(self, n: int, chars: int = 3000) -> str:
        return self.log(n).read_text(errors="replace")[-chars:]


async def leases(dsn: str) -> dict[int, str]:
    """partition -> worker holding an unexpired lease."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT partition, worker FROM partition_leases WHERE expires_at >= now()"
        )
    finally:
        await conn.close()
    return {r["partition"]: r["worker"] for r in rows}


async def wait_balanced(dsn: str, workers: int, timeout: float = 60) -> dict[int, str]:
    """Until every partition is held and `workers` workers hold a fair share each."""
    deadline = time.monotonic() + timeout
    share = -(-PARTITIONS // workers)
    held: dict[int, str] = {}
    while time.monotonic() < deadline:
        held = await leases(dsn)
        counts = Counter(held.values())
        if len(held) == PARTITIONS and len(counts) == workers and max(counts.values()) <= share:
            return held
        await asyncio.sleep(0.2)
    raise TimeoutError(f"partitions not balanced over {workers} workers: {Counter(held.values())}")


def partition_of_device(device: str, door: str | None) -> int:
    return device_partition(door, device, PARTITIONS)


async def logged_card_counts(dsn: str, event_ids: list[str]) -> Counter[tuple[str, str]]:
    """(device, event_id) -> rows in the access log, for the card events given."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT device_id, event_id, count(*) AS n FROM access_events
               WHERE event_id = ANY($1) AND type = 'card' GROUP BY 1, 2""",
            event_ids,
        )
    finally:
        await conn.close()
    return Counter({(r["device_id"], r["event_id"]): r["n"] for r in rows})


def plain_doors(campus: Campus) -> list[str]:
    """Terminals at doors that decide a card at once (no temperature to wait for)."""
    facts = campus.facts
    return [
        d
        for d in facts.mqtt_devices
        if facts.device_doors[d] not in facts.temperature_doors and not d.startswith("scan-")
    ]


RATE = 100  # card events per second, over all doors


class Load:
    """Card swipes at a steady rate (`rate` per second, `RATE` unless told), round robin
    over the doors, every one remembered."""

    def __init__(
        self, fleet: Fleet, devices: list[str], cards: tuple[str, ...], rate: float | None = None
    ) -> None:
        self.fleet, self.devices, self.cards = fleet, devices, cards
        self.rate = rate if rate is not None else RATE
        self.sent: list[tuple[str, str, float]] = []  # (device, event_id, perf_counter)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        k = 0
        started = time.perf_counter()
        while True:
            device = self.devices[k % len(self.devices)]
            eid = self.fleet[device].swipe(self.cards[k % len(self.cards)], direction="out")
            self.sent.append((device, eid, time.perf_counter()))
            k += 1
            # Steady by the clock, not by the sleeps: a slow tick is caught up.
            await asyncio.sleep(max(0.0, started + k / self.rate - time.perf_counter()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    async def answered(self, timeout: float) -> list[tuple[str, str]]:
        """Wait for every final decision; the (device, event_id) still unanswered."""
        deadline = time.monotonic() + timeout
        missing = [(d, e) for d, e, _ in self.sent]
        while missing and time.monotonic() < deadline:
            missing = [(d, e) for d, e in missing if e not in self.fleet[d].decided_at]
            await asyncio.sleep(0.2)
        return missing


async def wait_first_answers(fleet: Fleet, devices: list[str], card: str) -> None:
    """Every door answers (sessions subscribed): events sent before would still be queued,
    but the load's clock starts when the doors are decided."""
    for device in devices:
        eid = fleet[device].swipe(card, direction="out")
        await fleet[device].decision(eid, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
