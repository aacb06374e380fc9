"""Scenarios of what goes wrong on the wire: duplicates, broken payloads, forced doors,
unknown devices and a terminal losing power."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from devices.transports.mqtt import MqttError
from firmware_sim.campus import CampusFacts
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.scenarios.checks import (
    QUIET_S,
    ScenarioResult,
    expect_alert,
    final,
    mark,
    no_decision,
    outcome,
)
from firmware_sim.terminal import SimTerminal


async def duplicate(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """The same event sent twice is answered twice with the original decision."""
    result = ScenarioResult("duplicate")
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.resident_cards[5])
    result.expect("original", "admit/ok", await final(gate, eid, timeout))
    gate.resend(eid)
    finals = await gate.wait_finals(eid, 2, timeout)
    result.expect("answers to two sends", "2", str(len(finals)))
    result.expect(
        "answer to the duplicate", "admit/ok", outcome(finals[1]) if len(finals) > 1 else "none"
    )
    return result


def malformed_payloads(event_id_prefix: str, ts: str) -> dict[str, bytes]:
    """Payloads the gateway must reject without deciding, by what is wrong with them."""

    def event(**fields: Any) -> bytes:
        return json.dumps(fields).encode()

    p = event_id_prefix
    return {
        "not JSON": b'{"event_id": "' + p.encode() + b'-1", "type": "card", ',
        "not UTF-8": b"\xff\xfe\x00garbage",
        "JSON but not an object": b'["card", "04A1B2C3"]',
        "missing card_uid": event(event_id=f"{p}-2", ts=ts, type="card"),
        "missing ts": event(event_id=f"{p}-3", type="card", card_uid="04A1B2C3"),
        "card_uid a number": event(event_id=f"{p}-4", ts=ts, type="card", card_uid=12345678),
        "celsius a string": event(event_id=f"{p}-5", ts=ts, type="temperature", celsius="36.6"),
        "card_uid of 3 bytes": event(event_id=f"{p}-6", ts=ts, type="card", card_uid="A1B2C3"),
        "ts without offset": event(event_id=f"{p}-7", ts=ts[:19], type="card", card_uid="04A1B2C3"),
        "unknown type": event(event_id=f"{p}-8", ts=ts, type="teleport"),
        "event_id too long": event(event_id="x" * 65, ts=ts, type="card", card_uid="04A1B2C3"),
        "huge (600 KiB)": event(
            event_id=f"{p}-9", ts=ts, type="card", card_uid="04A1B2C3", pad="x" * 600 * 1024
        ),
    }


async def malformed(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """Broken payloads get no decision, and the same door still works right after."""
    result = ScenarioResult("malformed payloads")
    gate = fleet[facts.gate_device]
    prefix = f"bad{secrets.token_hex(3)}"
    ts = datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")
    payloads = malformed_payloads(prefix, ts)
    for payload in payloads.values():
        gate.send_raw(payload)
    ids = [f"{prefix}-{n}" for n in range(1, 10)] + ["x" * 65]
    result.expect(
        f"decisions for {len(payloads)} bad payloads",
        "none",
        await no_decision(gate, ids, QUIET_S),
    )
    eid = gate.swipe(facts.resident_cards[6])
    result.expect("a good swipe right after", "admit/ok", await final(gate, eid, timeout))
    return result


async def door_forced(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A door opened without a decision: a door_forced alert, and no decision command."""
    result = ScenarioResult("door forced")
    since = mark(alerts)
    terminal = fleet[facts.lab_device]
    eid = terminal.door("forced")
    await expect_alert(result, alerts, "door_forced", facts.lab_device, since, timeout)
    result.expect("decision for a door event", "none", await no_decision(terminal, [eid], 0.2))
    terminal.door("closed")
    return result


async def unknown_device(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A valid event from a device id the gateway does not know: not decided, alerted.

    When the fleet logs in with per-device identities, the broker has no account for the
    rogue either: it must refuse the connection before the gateway ever hears of it."""
    result = ScenarioResult("unknown device")
    since = mark(alerts)
    device_id = f"term-rogue-{secrets.token_hex(3)}"
    rogue = SimTerminal(fleet.address, device_id, prefix=fleet.prefix)
    if fleet.has_identities:
        try:
            await rogue.start(timeout)
            got = "accepted"
        except MqttError:
            got = "refused"
        finally:
            await rogue.stop()
        result.expect("the broker, to a device without an account", "refused", got)
        return result
    await rogue.start()
    try:
        eid = rogue.swipe(facts.resident_cards[0])
        await expect_alert(result, alerts, "unknown_device", device_id, since, timeout)
        result.expect("decision", "none", await no_decision(rogue, [eid], QUIET_S))
    finally:
        await rogue.stop()
    return result


async def device_crash(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A terminal loses power (the broker sends its will), then comes back and works."""
    result = ScenarioResult("device crash")
    since = mark(alerts)
    terminal = fleet[facts.gate_exit_device]
    await terminal.crash()
    await expect_alert(result, alerts, "device_offline", facts.gate_exit_device, since, timeout)
    await terminal.start()
    eid = terminal.swipe(facts.resident_cards[0], direction="out")
    result.expect("first swipe after the restart", "admit/ok", await final(terminal, eid, timeout))
    return result
