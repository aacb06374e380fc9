"""Load generation and measurement for `campusgate bench` (CONTRACT.md section 7).

A phase drives N simulated terminals against whatever answers on a topic
prefix (the gateway, or the bare echo responder) and measures each card
event's latency from the moment it was *due* to the arrival of its final
decision, so a load generator that falls behind shows up in the figures
instead of hiding them.

- Open loop (`rate > 0`): event k is due at t0 + k/rate, round-robin over the
  terminals; the scheduler publishes every event whose due time has passed.
- Saturation (`rate == 0`): each terminal keeps `window` events outstanding
  and sends the next one when a decision arrives.

After the duration the phase waits up to `grace_s` for stragglers; events still
without a final decision are `lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import Fleet
from firmware_sim.terminal import SimTerminal

_LOGGER = logging.getLogger(__name__)

ZONE_ID = "bench-zone"
ORG_UNIT_ID = "bench-unit"
PEOPLE = 2000
# Bench cards are BE + 3 bytes: a 4-byte uid space no other campus card is issued from.
CARD_PREFIX = "BE"
ECHO_PREFIX = "bench-echo"
TICK_S = 0.25
PROBE_EVERY_S = 1.0


class BenchError(Exception):
    """The benchmark cannot run: bad arguments, nothing answering, a child that died."""


def door_id(i: int) -> str:
    return f"bench-door-{i}"


def device_id(i: int) -> str:
    return f"bench-term-{i}"


def card_uid(i: int) -> str:
    if not 0 <= i < 1 << 24:
        raise ValueError(f"bench card index {i} out of range")
    return f"{CARD_PREFIX}{i:06X}"


def bench_cards(people: int = PEOPLE) -> list[str]:
    return [card_uid(i) for i in range(people)]


def bench_manifest(
    doors: int, people: int = PEOPLE, zone_capacity: int | None = None
) -> dict[str, Any]:
    """The manifest document (section 6) of the bench's zone, doors, devices and people.

    Access goes through an org unit of its own, not a `kind` grant, so no real
    person gains the bench zone and no bench person gains anything else.
    """
    return {
        "org_units": [{"id": ORG_UNIT_ID, "name": "Load benchmark"}],
        "zones": [
            {
                "id": ZONE_ID,
                "name": "Load benchmark",
                "kind": "other",
                # With a capacity, every entry claims its place in the shared zone count.
                **({"capacity": zone_capacity} if zone_capacity is not None else {}),
            }
        ],
        "doors": [
            {"id": door_id(i), "zone": ZONE_ID, "direction": "in", "requires_temperature": False}
            for i in range(doors)
        ],
        "devices": [
            {"id": device_id(i), "door": door_id(i), "kind": "terminal", "transport": "mqtt"}
            for i in range(doors)
        ],
        "people": [
            {
                "id": f"bench-p{i}",
                "kind": "student",
                "name": f"Bench Person {i}",
                "org_unit": ORG_UNIT_ID,
                "cards": [card_uid(i)],
            }
            for i in range(people)
        ],
        "grants": [{"subject": {"org_unit": ORG_UNIT_ID}, "zone": ZONE_ID}],
    }


@dataclass(frozen=True, slots=True)
class LoadSpec:
    doors: int
    rate: float  # card events per second over all terminals; 0 = as fast as answered
    duration_s: float
    window: int = 64  # outstanding events per terminal at saturation
    grace_s: float = 5.0
    zone_capacity: int | None = None  # the bench zone's capacity (None: none)

    def check(self) -> None:
        """Raise BenchError for arguments that cannot describe a run."""
        if self.doors < 1:
            raise BenchError(f"--doors must be at least 1, not {self.doors}")
        if not math.isfinite(self.rate) or self.rate < 0:
            raise BenchError(f"--rate must be 0 (saturation) or a positive number, not {self.rate}")
        if not math.isfinite(self.duration_s) or self.duration_s <= 0:
            raise BenchError(
                f"--duration must be a positive number of seconds, not {self.duration_s}"
            )
        if self.window < 1:
            raise BenchError(f"--window must be at least 1, not {self.window}")
        if self.grace_s < 0:
            raise BenchError(f"--grace must not be negative, not {self.grace_s}")
        if self.rate and self.rate * self.duration_s < 1:
            raise BenchError("--rate x --duration is less than one event")

    @property
    def open_loop(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one phase measured; `as_contract()` is its JSON in section 7."""

    sent: int
    decided: int
    lost: int
    per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    verdicts: Mapping[str, int] = field(default_factory=dict)  # "admit/ok" -> count
    signed: int = 0  # final decisions that carried a signature
    # Distinct signed batches (`batch` ids) among them: one Ed25519 signature each.
    signatures: int = 0
    # CPU seconds the responder process spent from the start of the load to the end of the
    # grace period, when it is a child of the bench (None otherwise): unlike per_s, this
    # does not move with what else the machine is doing.
    responder_cpu_s: float | None = None

    @property
    def cpu_us_per_decision(self) -> float | None:
        if self.responder_cpu_s is None or not self.decided:
            return None
        return round(self.responder_cpu_s / self.decided * 1e6, 1)

    def as_contract(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "decided": self.decided,
            "lost": self.lost,
            "per_s": self.per_s,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    phase: str
    stage: str  # "probe", "load", "grace"
    elapsed_s: float
    sent: int
    decided: int


ProgressHook = Callable[[PhaseProgress], None]


def percentile_ms(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds (3 decimals)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def report(
    spec: LoadSpec,
    gateway: PhaseResult,
    echo: PhaseResult,
    unsigned: PhaseResult | Sequence[PhaseResult] | None = None,
    *,
    signed_runs: Sequence[PhaseResult] = (),
) -> dict[str, Any]:
    """The JSON document of section 7; with `unsigned` (the gateway with signing off, same
    run; one result per round when repeated, `signed_runs` the signed ones in the same
    rounds), also `gateway_unsigned` and what signing cost."""
    rate: float = int(spec.rate) if float(spec.rate).is_integer() else spec.rate
    duration: float = (
        int(spec.duration_s) if float(spec.duration_s).is_integer() else spec.duration_s
    )
    if isinstance(unsigned, PhaseResult):
        unsigned = [unsigned]
    return {
        "config": {"doors": spec.doors, "rate": rate, "duration_s": duration},
        "gateway": gateway.as_contract(),
        "echo": echo.as_contract(),
        "ratio": {
            "per_s": ratio(gateway.per_s, echo.per_s),
            "p99_ms": ratio(gateway.p99_ms, echo.p99_ms),
        },
        **({} if not unsigned else signing_cost(signed_runs or [gateway], unsigned)),
    }


def median_run(runs: Sequence[PhaseResult]) -> PhaseResult:
    """The run with the median throughput (the lower one of an even count): a real run."""
    ordered = sorted(runs, key=lambda r: r.per_s)
    return ordered[(len(ordered) - 1) // 2]


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def signing_cost(
    signed: PhaseResult | Sequence[PhaseResult], unsigned: PhaseResult | Sequence[PhaseResult]
) -> dict[str, Any]:
    """`gateway_unsigned` and `signing`: throughput with signing on over off, and the cost.

    Given one result per round for each (the bench alternates which goes first), the
    figures are the median runs', and `round_cost_pct` pairs the two runs of each round:
    its median moves least with the load of the rest of a shared machine.
    """
    signed_runs = [signed] if isinstance(signed, PhaseResult) else list(signed)
    unsigned_runs = [unsigned] if isinstance(unsigned, PhaseResult) else list(unsigned)
    on, off = median_run(signed_runs), median_run(unsigned_runs)
    per_s = ratio(on.per_s, off.per_s)
    cpu_on = _median([r.cpu_us_per_decision for r in signed_runs])
    cpu_off = _median([r.cpu_us_per_decision for r in unsigned_runs])
    cpu = ratio(cpu_on, cpu_off)
    rounds = [
        round((1 - a.per_s / b.per_s) * 100, 1)
        for a, b in zip(signed_runs, unsigned_runs, strict=False)
        if b.per_s
    ]
    return {
        "gateway_unsigned": off.as_contract(),
        "signing": {
            "rounds": len(rounds),
            "per_s_ratio": per_s,
            "cost_pct": None if per_s is None else round((1 - per_s) * 100, 1),
            "round_cost_pct": rounds,
            "median_round_cost_pct": _median(rounds),
            "signed_decisions": on.signed,
            # Decisions per Ed25519 signature (ed25519-merkle-v1 signs a loop tick's batch).
            "decisions_per_signature": round(on.signed / on.signatures, 2)
            if on.signatures
            else None,
            # The gateway's own CPU per decision, with signing on and off: what signing
            # costs a gateway that is the bottleneck, whatever else shares the machine.
            "cpu_us_per_decision": cpu_on,
            "cpu_us_per_decision_unsigned": cpu_off,
            "cpu_cost_pct": None if cpu is None else round((cpu - 1) * 100, 1),
        },
    }


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of a phase (perf_counter seconds) with something on or off (an API flood)."""

    start: float
    end: float
    on: bool


def split_by_windows(
    samples: Iterable[tuple[float, float]], windows: Sequence[Window], settle_s: float = 0.5
) -> dict[str, dict[str, Any]]:
    """Latencies (due, seconds) split by the window their event was due in: `on` and `off`,
    each with its count and percentiles. An event due within `settle_s` of a window's start
    counts in neither: what was started in the window before may still be running."""
    split: dict[bool, list[float]] = {True: [], False: []}
    for due, latency in samples:
        for window in windows:
            if window.start + settle_s <= due < window.end:
                split[window.on].append(latency)
                break
    figures: dict[str, dict[str, Any]] = {}
    for on, latencies in split.items():
        ordered = sorted(latencies)
        figures["on" if on else "off"] = {
            "decided": len(ordered),
            "p50_ms": percentile_ms(ordered, 50),
            "p95_ms": percentile_ms(ordered, 95),
            "p99_ms": percentile_ms(ordered, 99),
        }
    return figures


class _Meter:
    """Outstanding events and the latencies of those decided."""

    def __init__(self) -> None:
        self.outstanding: dict[str, float] = {}  # event_id -> due (perf_counter)
        self.latencies: list[float] = []
        self.due: list[float] = []  # when each decided event was due, beside its latency
        self.verdicts: Counter[str] = Counter()
        self.signed = 0
        self.batches: set[object] = set()
        self.sent = 0
        self.last_decided_at = 0.0
        self.on_final: Callable[[SimTerminal], None] | None = None
        self.all_decided = asyncio.Event()  # set whenever nothing is outstanding

    def record_sent(self, event_id: str, due: float) -> None:
        self.outstanding[event_id] = due
        self.sent += 1

    def on_decision(
        self, terminal: SimTerminal, event_id: str, body: dict[str, Any], now: float
    ) -> None:
        due = self.outstanding.pop(event_id, None)
        if due is None:  # a readiness probe, or an event of no interest
            return
        self.latencies.append(now - due)
        self.due.append(due)
        self.verdicts[f"{body.get('decision')}/{body.get('reason')}"] += 1
        if "sig" in body:
            self.signed += 1
            self.batches.add(body.get("batch"))
        self.last_decided_at = now
        if not self.outstanding:
            self.all_decided.set()
        if self.on_final is not None:
            self.on_final(terminal)

    @property
    def decided(self) -> int:
        return len(self.latencies)


class Phase:
    """One measured run of `spec` against the responder on `prefix`."""

    def __init__(
        self,
        name: str,
        broker: BrokerAddress | str,
        prefix: str,
        spec: LoadSpec,
        *,
        cards: Sequence[str] | None = None,
        progress: ProgressHook | None = None,
        ready_timeout_s: float = 30.0,
        username: str | None = None,
        cpu_clock: Callable[[], float | None] | None = None,
        passwords: Mapping[str, str] | None = None,
        probe_every_door: bool = False,
    ) -> None:
        """`username`: one broker account for every simulated door (`campusgate-sim` of
        `campusgate devices credentials --sim-account`, its password in the URL);
        `passwords`: instead, each door logs in as itself (`load_device_secrets`)."""
        self.name = name
        self._cpu_clock = cpu_clock or (lambda: None)
        self._cpu_at_load: float | None = None
        self.prefix = prefix
        self.spec = spec
        self.cards = list(cards) if cards is not None else bench_cards()
        self._progress = progress
        self._ready_timeout_s = ready_timeout_s
        self._probe_every_door = probe_every_door
        self._meter = _Meter()
        # The terminals do not verify signatures here: a real terminal spends its own CPU
        # on that, and doing it for every door in this one process would measure the load
        # generator, not the gateway. `PhaseResult.signed` shows the decisions were signed.
        self._fleet = Fleet(
            broker,
            [device_id(i) for i in range(spec.doors)],
            prefix=prefix,
            on_decision=self._meter.on_decision,
            username=username,
            passwords=passwords,
            verify_commands=False,
        )
        self._terminals = list(self._fleet)
        self._next_card = 0
        self._stage = "probe"
        self._started = time.perf_counter()

    async def run(self) -> PhaseResult:
        """Connect, wait for an answer to a probe, drive the load, wait for stragglers."""
        await self._fleet.start()
        ticker = asyncio.create_task(self._tick(), name=f"bench-{self.name}-progress")
        try:
            await self._probe()
            t0 = time.perf_counter() + 0.05
            self._started = t0
            self._cpu_at_load = self._cpu_clock()
            self._stage = "load"
            # The generator's own collector pauses would be charged to whichever phase they hit.
            gc.collect()
            gc.disable()
            try:
                if self.spec.open_loop:
                    await self._open_loop(t0)
                else:
                    await self._saturate(t0)
                self._stage = "grace"
                await self._drain(self.spec.grace_s)
            finally:
                gc.enable()
            return self._result(t0, self._cpu_used())
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._fleet.stop()

    async def _probe(self) -> None:
        """Swipe until a final decision comes back: the responder is up. On one terminal,
        or with `probe_every_door` on each (partitioned workers open their doors'
        sessions one partition at a time, and the load must not start before all are)."""
        terminals = self._terminals if self._probe_every_door else self._terminals[:1]
        deadline = time.perf_counter() + self._ready_timeout_s
        await asyncio.gather(*(self._probe_one(t, deadline) for t in terminals))

    async def _probe_one(self, terminal: SimTerminal, deadline: float) -> None:
        while True:
            event_id = terminal.swipe(self.cards[0])
            try:
                await terminal.decision(event_id, timeout=PROBE_EVERY_S)
                return
            except TimeoutError:
                if time.perf_counter() >= deadline:
                    raise BenchError(
                        f"{self.name}: no decision on {self.prefix}/devices/"
                        f"{terminal.device_id}/commands within {self._ready_timeout_s:.0f} s: "
                        "is it serving this broker and prefix?"
                    ) from None

    def _send(self, terminal: SimTerminal, due: float | None) -> None:
        card = self.cards[self._next_card]
        self._next_card = (self._next_card + 1) % len(self.cards)
        event_id = terminal.swipe(card, due=due)
        self._meter.record_sent(event_id, terminal.sent_at[event_id])

    async def _open_loop(self, t0: float) -> None:
        rate, terminals = self.spec.rate, self._terminals
        total = max(1, round(rate * self.spec.duration_s))
        k = 0
        while k < total:
            now = time.perf_counter()
            due_now = min(total, math.floor((now - t0) * rate) + 1) if now >= t0 else 0
            while k < due_now:
                self._send(terminals[k % len(terminals)], t0 + k / rate)
                k += 1
            # Yield even when late, so decisions are read while catching up.
            await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))

    async def _saturate(self, t0: float) -> None:
        deadline = t0 + self.spec.duration_s
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))

        def refill(terminal: SimTerminal) -> None:
            if time.perf_counter() < deadline:
                self._send(terminal, None)

        self._meter.on_final = refill
        for _ in range(self.spec.window):
            for terminal in self._terminals:
                self._send(terminal, None)
            await asyncio.sleep(0)
        try:
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
        finally:
            self._meter.on_final = None

    async def _drain(self, grace_s: float) -> None:
        if not self._meter.outstanding:
            return
        self._meter.all_decided.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._meter.all_decided.wait(), grace_s)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for terminal in self._terminals:
                terminal.commands.clear()  # the bench keeps its own account; spare the memory
            if self._progress is not None:
                self._progress(
                    PhaseProgress(
                        self.name,
                        self._stage,
                        max(0.0, time.perf_counter() - self._started),
                        self._meter.sent,
                        self._meter.decided,
                    )
                )

    def samples(self) -> list[tuple[float, float]]:
        """(due, latency) in seconds of every decided event, perf_counter clock."""
        return list(zip(self._meter.due, self._meter.latencies, strict=True))

    def _cpu_used(self) -> float | None:
        now = self._cpu_clock()
        if now is None or self._cpu_at_load is None:
            return None
        return round(now - self._cpu_at_load, 3)

    def _result(self, t0: float, cpu_s: float | None = None) -> PhaseResult:
        meter = self._meter
        ordered = sorted(meter.latencies)
        # Throughput over the loaded time, stretched when the last decisions came later.
        span = max(self.spec.duration_s, meter.last_decided_at - t0)
        return PhaseResult(
            sent=meter.sent,
            decided=meter.decided,
            lost=len(meter.outstanding),
            per_s=round(meter.decided / span, 1),
            p50_ms=percentile_ms(ordered, 50),
            p95_ms=percentile_ms(ordered, 95),
            p99_ms=percentile_ms(ordered, 99),
            verdicts=dict(meter.verdicts),
            signed=meter.signed,
            signatures=len(meter.batches),
            responder_cpu_s=cpu_s,
        )


class ChildProcess:
    """A helper process (gateway or echo) with its output in a log file; SIGTERM, then kill."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdout=self._log, stderr=self._log, start_new_session=True
        )

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system, all threads) the process has used; None off Linux."""
        if self._proc is None:
            return None
        try:
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        # After the command name: state is field 3, utime and stime fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def exited(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout_s)
                except TimeoutError:
                    _LOGGER.warning(
                        "%s did not stop within %.0f s; killing it", self.name, timeout_s
                    )
                    proc.kill()
                    await proc.wait()
            return proc.returncode
        finally:
            if self._log is not None:
                self._log.close()

    async def watch(self, work: asyncio.Future[Any] | Any) -> Any:
        """Await `work`, failing early with BenchError if the child exits meanwhile."""
        task = asyncio.ensure_future(work)
        died = asyncio.ensure_future(self._proc.wait()) if self._proc is not None else None
        waiting = {task} | ({died} if died is not None else set())
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            if died is not None:
                died.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, BenchError):
            await task
        raise BenchError(f"{self.name} exited with status {self.exited}: {self.tail()}")


def echo_process(broker_url: str, log_path: Path, *, prefix: str = ECHO_PREFIX) -> ChildProcess:
    """`python -m firmware_sim.echo` on the broker (not started)."""
    argv = [sys.executable, "-m", "firmware_sim.echo", "--mqtt-url", broker_url, "--prefix", prefix]
    return ChildProcess("echo responder", argv, env=dict(os.environ), log_path=log_path)
