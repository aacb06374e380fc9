"""What a scenario found: checks of expected against actual, and the helpers that wait
for a decision, an alert or the absence of both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.campus import CampusFacts
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.terminal import SimTerminal

FEVER_C = 38.5
NORMAL_C = 36.5
INVALID_C = 33.0
QUIET_S = 1.0  # how long "no decision" is waited for
HEALTH_WORDS = ("isolation", "fever", "health", "quarantine", "temperature", "covid")


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


@dataclass(slots=True)
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def expect(self, what: str, expected: str, got: str) -> None:
        self.checks.append(Check(what, expected, got))

    def __str__(self) -> str:
        lines = [f"{'PASS' if self.ok else 'FAIL'} {self.name}"]
        for c in self.checks:
            mark = "ok " if c.ok else "BAD"
            lines.append(f"  {mark} {c.what}: expected {c.expected}, got {c.got}")
        return "\n".join(lines)


Scenario = Callable[..., Awaitable[ScenarioResult]]


def outcome(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no decision"
    return f"{decision.get('decision')}/{decision.get('reason')}"


async def final(terminal: SimTerminal, event_id: str, timeout: float) -> str:
    try:
        return outcome(await terminal.decision(event_id, timeout))
    except TimeoutError:
        return "no decision"


async def expect_alert(
    result: ScenarioResult,
    alerts: AlertWatch | None,
    kind: str,
    device: str,
    since: int,
    timeout: float,
) -> None:
    if alerts is None:
        return
    alert = await alerts.wait_for(kind, device=device, since=since, timeout=timeout)
    result.expect(f"alert on {device}", kind, alert["kind"] if alert else "no alert")


def mark(alerts: AlertWatch | None) -> int:
    return alerts.mark() if alerts is not None else 0


async def no_decision(terminal: SimTerminal, event_ids: list[str], wait_s: float) -> str:
    await asyncio.sleep(wait_s)
    answered = [
        c.body.get("event_id")
        for c in terminal.commands
        if c.body is not None and c.body.get("event_id") in event_ids
    ]
    return "none" if not answered else f"decisions for {answered}"


def scanner_of(fleet: Fleet, facts: CampusFacts) -> SimTerminal:
    if facts.scanner_device is not None and facts.scanner_device in fleet:
        return fleet[facts.scanner_device]
    return fleet[facts.temperature_device]


async def decision_of(
    terminal: SimTerminal, event_id: str, timeout: float
) -> dict[str, Any] | None:
    try:
        return await terminal.decision(event_id, timeout)
    except TimeoutError:
        return None


def display_check(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no decision"
    message = str(decision.get("message", "")).lower()
    leaked = [w for w in HEALTH_WORDS if w in message]
    return f"message mentions {leaked}" if leaked else "no health detail"


def json_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
