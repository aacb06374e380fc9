"""Scripted door traffic against a running gateway, with what each script expects.

Every scenario is `async def name(fleet, facts, *, alerts=None, timeout=5.0)`
and returns a `ScenarioResult`: a list of checks, each with what was expected
and what came. With an `AlertWatch` the scenarios also expect the alert that
contract section 5 names; without one they check decisions only.

Scenarios change the gateway's state where the contract says they do: `fever`
puts its person (one of `facts.fever_cards`, chosen by `which`) on fever_watch,
so run it with a fresh `which` each time against the same database.
"""

from __future__ import annotations

from firmware_sim.campus import CampusFacts
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.scenarios.checks import Check, Scenario, ScenarioResult
from firmware_sim.scenarios.decisions import (
    card_then_temperature,
    fever,
    isolation_breach,
    normal_swipes,
    outsider,
    revoked_and_unauthorized,
    temperature_never_measured,
    temperature_then_card,
)
from firmware_sim.scenarios.faults import (
    device_crash,
    door_forced,
    duplicate,
    malformed,
    malformed_payloads,
    unknown_device,
)
from firmware_sim.scenarios.forged import forged_commands
from firmware_sim.scenarios.traffic import TrafficStats, traffic

__all__ = [
    "QUICK",
    "Check",
    "Scenario",
    "ScenarioResult",
    "TrafficStats",
    "card_then_temperature",
    "device_crash",
    "door_forced",
    "duplicate",
    "fever",
    "forged_commands",
    "isolation_breach",
    "malformed",
    "malformed_payloads",
    "normal_swipes",
    "outsider",
    "revoked_and_unauthorized",
    "run_all",
    "temperature_never_measured",
    "temperature_then_card",
    "traffic",
    "unknown_device",
]

QUICK: tuple[Scenario, ...] = (
    normal_swipes,
    card_then_temperature,
    temperature_then_card,
    outsider,
    fever,
    isolation_breach,
    revoked_and_unauthorized,
    duplicate,
    malformed,
    door_forced,
    unknown_device,
    device_crash,
)


async def run_all(
    fleet: Fleet,
    facts: CampusFacts,
    *,
    alerts: AlertWatch | None = None,
    timeout: float = 5.0,
    fever_which: int = 0,
    include_slow: bool = False,
    window_s: float = 15.0,
) -> list[ScenarioResult]:
    """Run the scenarios one after another; `include_slow` adds the pairing-window timeout."""
    results = []
    for scenario in QUICK:
        if scenario is fever:
            results.append(
                await fever(fleet, facts, alerts=alerts, timeout=timeout, which=fever_which)
            )
        else:
            results.append(await scenario(fleet, facts, alerts=alerts, timeout=timeout))
    if include_slow:
        results.append(
            await temperature_never_measured(
                fleet, facts, alerts=alerts, timeout=timeout, window_s=window_s
            )
        )
    return results
