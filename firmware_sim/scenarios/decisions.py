"""Scenarios of the policy's decisions: who is admitted, who is denied and why, and
the alert the guards get (docs/protocol.md, Decisions and Alerts)."""

from __future__ import annotations

import asyncio

from firmware_sim.campus import CampusFacts
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.scenarios.checks import (
    FEVER_C,
    INVALID_C,
    NORMAL_C,
    ScenarioResult,
    decision_of,
    display_check,
    expect_alert,
    final,
    mark,
    outcome,
    scanner_of,
)


async def normal_swipes(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A resident, a staff member and a visitor where their grants let them in."""
    result = ScenarioResult("normal swipes")
    cases = [
        ("resident at the gate", facts.gate_device, facts.resident_cards[0], None),
        ("resident leaving by the gate", facts.gate_exit_device, facts.resident_cards[0], "out"),
        ("staff at an office", facts.office_device, facts.staff_card, "in"),
        ("visitor at the gate", facts.gate_device, facts.visitor_card, None),
    ]
    for what, device, card, direction in cases:
        terminal = fleet[device]
        eid = terminal.swipe(card, direction=direction)
        result.expect(what, "admit/ok", await final(terminal, eid, timeout))
    return result


async def card_then_temperature(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """Card first at a temperature door: pending, then admit once a normal reading pairs."""
    result = ScenarioResult("card then temperature")
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.resident_cards[1])
    pending = await terminal.wait_pending(eid, timeout)
    result.expect("before the reading", "pending/temperature_required", outcome(pending))
    scanner_of(fleet, facts).measure(NORMAL_C)
    result.expect("after 36.5 C", "admit/ok", await final(terminal, eid, timeout))
    return result


async def temperature_then_card(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A reading first, then the card within the pairing window: admitted."""
    result = ScenarioResult("temperature then card")
    terminal = fleet[facts.temperature_device]
    scanner_of(fleet, facts).measure(36.6)
    await asyncio.sleep(0.05)
    eid = terminal.swipe(facts.resident_cards[2])
    result.expect("card after 36.6 C", "admit/ok", await final(terminal, eid, timeout))
    eid = terminal.swipe(facts.resident_cards[3], celsius=36.4)
    result.expect("card with its own 36.4 C", "admit/ok", await final(terminal, eid, timeout))
    return result


async def outsider(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A card nobody holds: unknown_card, even with a fever (the first failing check decides)."""
    result = ScenarioResult("outsider")
    since = mark(alerts)
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.outsider_card)
    result.expect("unknown card at the gate", "deny/unknown_card", await final(gate, eid, timeout))
    await expect_alert(result, alerts, "outsider", facts.gate_device, since, timeout)
    door = fleet[facts.temperature_device]
    eid = door.swipe(facts.outsider_card.lower(), celsius=FEVER_C)
    result.expect(
        "unknown card (lower case) with 38.5 C",
        "deny/unknown_card",
        await final(door, eid, timeout),
    )
    return result


async def fever(
    fleet: Fleet,
    facts: CampusFacts,
    *,
    alerts: AlertWatch | None = None,
    timeout: float = 5.0,
    which: int = 0,
) -> ScenarioResult:
    """A resident reads 38.5 C: deny with `fever` and a fever alert (the person goes on fever_watch)."""
    result = ScenarioResult("fever")
    card = facts.fever_cards[which]
    since = mark(alerts)
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(card)
    scanner_of(fleet, facts).measure(FEVER_C, card_uid=card)
    decision = await decision_of(terminal, eid, timeout)
    result.expect("38.5 C bound to the card", "deny/fever", outcome(decision))
    result.expect("display text", "no health detail", display_check(decision))
    await expect_alert(result, alerts, "fever", facts.temperature_device, since, timeout)
    return result


async def isolation_breach(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A resident in home isolation tries the dormitory door with a normal reading, then
    leaves by the dormitory exit: free egress admits them, and the guards hear of it."""
    result = ScenarioResult("isolation breach")
    since = mark(alerts)
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.isolated_card, celsius=NORMAL_C)
    decision = await decision_of(terminal, eid, timeout)
    result.expect("isolated resident", "deny/health_hold", outcome(decision))
    result.expect("display text", "no health detail", display_check(decision))
    await expect_alert(result, alerts, "isolation_breach", facts.temperature_device, since, timeout)
    since = mark(alerts)
    exit_door = fleet[facts.dorm_exit_device]
    eid = exit_door.swipe(facts.isolated_card)
    result.expect("isolated resident leaving", "admit/ok", await final(exit_door, eid, timeout))
    if alerts is not None:
        alert = await alerts.wait_for(
            "isolation_breach", device=facts.dorm_exit_device, since=since, timeout=timeout
        )
        detail = alert["detail"] if alert else {}
        result.expect(
            "breach alert on the way out",
            f"out, caretaker {facts.caretaker}",
            f"{detail.get('direction')}, caretaker {detail.get('caretaker')}",
        )
    return result


async def revoked_and_unauthorized(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """An inactive person's card; a student of another college at a lab; a bad reading."""
    result = ScenarioResult("revoked, unauthorized, bad reading")
    since = mark(alerts)
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.inactive_card)
    result.expect("inactive person", "deny/card_revoked", await final(gate, eid, timeout))
    await expect_alert(result, alerts, "card_revoked", facts.gate_device, since, timeout)
    gate_exit = fleet[facts.gate_exit_device]
    eid = gate_exit.swipe(facts.inactive_card, direction="out")  # free egress
    result.expect("inactive person leaving", "admit/ok", await final(gate_exit, eid, timeout))
    lab = fleet[facts.lab_device]
    eid = lab.swipe(facts.lab_stranger_card, direction="in")
    result.expect(
        "student of another college at a lab",
        "deny/not_authorized",
        await final(lab, eid, timeout),
    )
    await expect_alert(result, alerts, "unauthorized", facts.lab_device, since, timeout)
    door = fleet[facts.temperature_device]
    eid = door.swipe(facts.resident_cards[4], celsius=INVALID_C)
    result.expect("33.0 C", "deny/temperature_invalid", await final(door, eid, timeout))
    return result


async def temperature_never_measured(
    fleet: Fleet,
    facts: CampusFacts,
    *,
    alerts: AlertWatch | None = None,
    timeout: float = 5.0,
    window_s: float = 15.0,
) -> ScenarioResult:
    """Card at a temperature door and no reading: pending, then deny when the window passes."""
    result = ScenarioResult("temperature never measured")
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.resident_cards[7])
    result.expect(
        "before the window ends",
        "pending/temperature_required",
        outcome(await terminal.wait_pending(eid, timeout)),
    )
    result.expect(
        "after the window",
        "deny/temperature_required",
        await final(terminal, eid, window_s + timeout),
    )
    return result
