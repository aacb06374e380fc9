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

import asyncio
import base64
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.transports.mqtt import BrokerAddress, MqttClient, MqttError
from firmware_sim.campus import CampusFacts, SimPerson
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


def _outcome(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no decision"
    return f"{decision.get('decision')}/{decision.get('reason')}"


async def _final(terminal: SimTerminal, event_id: str, timeout: float) -> str:
    try:
        return _outcome(await terminal.decision(event_id, timeout))
    except TimeoutError:
        return "no decision"


async def _expect_alert(
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


def _mark(alerts: AlertWatch | None) -> int:
    return alerts.mark() if alerts is not None else 0


async def _no_decision(terminal: SimTerminal, event_ids: list[str], wait_s: float) -> str:
    await asyncio.sleep(wait_s)
    answered = [
        c.body.get("event_id")
        for c in terminal.commands
        if c.body is not None and c.body.get("event_id") in event_ids
    ]
    return "none" if not answered else f"decisions for {answered}"


# ---- the scenarios -------------------------------------------------------------


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
        result.expect(what, "admit/ok", await _final(terminal, eid, timeout))
    return result


async def card_then_temperature(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """Card first at a temperature door: pending, then admit once a normal reading pairs."""
    result = ScenarioResult("card then temperature")
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.resident_cards[1])
    pending = await terminal.wait_pending(eid, timeout)
    result.expect("before the reading", "pending/temperature_required", _outcome(pending))
    _scanner(fleet, facts).measure(NORMAL_C)
    result.expect("after 36.5 C", "admit/ok", await _final(terminal, eid, timeout))
    return result


async def temperature_then_card(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A reading first, then the card within the pairing window: admitted."""
    result = ScenarioResult("temperature then card")
    terminal = fleet[facts.temperature_device]
    _scanner(fleet, facts).measure(36.6)
    await asyncio.sleep(0.05)
    eid = terminal.swipe(facts.resident_cards[2])
    result.expect("card after 36.6 C", "admit/ok", await _final(terminal, eid, timeout))
    eid = terminal.swipe(facts.resident_cards[3], celsius=36.4)
    result.expect("card with its own 36.4 C", "admit/ok", await _final(terminal, eid, timeout))
    return result


async def outsider(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A card nobody holds: unknown_card, even with a fever (the first failing check decides)."""
    result = ScenarioResult("outsider")
    since = _mark(alerts)
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.outsider_card)
    result.expect("unknown card at the gate", "deny/unknown_card", await _final(gate, eid, timeout))
    await _expect_alert(result, alerts, "outsider", facts.gate_device, since, timeout)
    door = fleet[facts.temperature_device]
    eid = door.swipe(facts.outsider_card.lower(), celsius=FEVER_C)
    result.expect(
        "unknown card (lower case) with 38.5 C",
        "deny/unknown_card",
        await _final(door, eid, timeout),
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
    since = _mark(alerts)
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(card)
    _scanner(fleet, facts).measure(FEVER_C, card_uid=card)
    decision = await _decision(terminal, eid, timeout)
    result.expect("38.5 C bound to the card", "deny/fever", _outcome(decision))
    result.expect("display text", "no health detail", _display_check(decision))
    await _expect_alert(result, alerts, "fever", facts.temperature_device, since, timeout)
    return result


async def isolation_breach(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A resident in home isolation tries the dormitory door with a normal reading, then
    leaves by the dormitory exit: free egress admits them, and the guards hear of it."""
    result = ScenarioResult("isolation breach")
    since = _mark(alerts)
    terminal = fleet[facts.temperature_device]
    eid = terminal.swipe(facts.isolated_card, celsius=NORMAL_C)
    decision = await _decision(terminal, eid, timeout)
    result.expect("isolated resident", "deny/health_hold", _outcome(decision))
    result.expect("display text", "no health detail", _display_check(decision))
    await _expect_alert(
        result, alerts, "isolation_breach", facts.temperature_device, since, timeout
    )
    since = _mark(alerts)
    exit_door = fleet[facts.dorm_exit_device]
    eid = exit_door.swipe(facts.isolated_card)
    result.expect("isolated resident leaving", "admit/ok", await _final(exit_door, eid, timeout))
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
    since = _mark(alerts)
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.inactive_card)
    result.expect("inactive person", "deny/card_revoked", await _final(gate, eid, timeout))
    await _expect_alert(result, alerts, "card_revoked", facts.gate_device, since, timeout)
    gate_exit = fleet[facts.gate_exit_device]
    eid = gate_exit.swipe(facts.inactive_card, direction="out")  # free egress
    result.expect("inactive person leaving", "admit/ok", await _final(gate_exit, eid, timeout))
    lab = fleet[facts.lab_device]
    eid = lab.swipe(facts.lab_stranger_card, direction="in")
    result.expect(
        "student of another college at a lab",
        "deny/not_authorized",
        await _final(lab, eid, timeout),
    )
    await _expect_alert(result, alerts, "unauthorized", facts.lab_device, since, timeout)
    door = fleet[facts.temperature_device]
    eid = door.swipe(facts.resident_cards[4], celsius=INVALID_C)
    result.expect("33.0 C", "deny/temperature_invalid", await _final(door, eid, timeout))
    return result


async def duplicate(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """The same event sent twice is answered twice with the original decision."""
    result = ScenarioResult("duplicate")
    gate = fleet[facts.gate_device]
    eid = gate.swipe(facts.resident_cards[5])
    result.expect("original", "admit/ok", await _final(gate, eid, timeout))
    gate.resend(eid)
    finals = await gate.wait_finals(eid, 2, timeout)
    result.expect("answers to two sends", "2", str(len(finals)))
    result.expect(
        "answer to the duplicate", "admit/ok", _outcome(finals[1]) if len(finals) > 1 else "none"
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
        await _no_decision(gate, ids, QUIET_S),
    )
    eid = gate.swipe(facts.resident_cards[6])
    result.expect("a good swipe right after", "admit/ok", await _final(gate, eid, timeout))
    return result


async def door_forced(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A door opened without a decision: a door_forced alert, and no decision command."""
    result = ScenarioResult("door forced")
    since = _mark(alerts)
    terminal = fleet[facts.lab_device]
    eid = terminal.door("forced")
    await _expect_alert(result, alerts, "door_forced", facts.lab_device, since, timeout)
    result.expect("decision for a door event", "none", await _no_decision(terminal, [eid], 0.2))
    terminal.door("closed")
    return result


async def unknown_device(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A valid event from a device id the gateway does not know: not decided, alerted.

    When the fleet logs in with per-device identities, the broker has no account for the
    rogue either: it must refuse the connection before the gateway ever hears of it."""
    result = ScenarioResult("unknown device")
    since = _mark(alerts)
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
        await _expect_alert(result, alerts, "unknown_device", device_id, since, timeout)
        result.expect("decision", "none", await _no_decision(rogue, [eid], QUIET_S))
    finally:
        await rogue.stop()
    return result


async def device_crash(
    fleet: Fleet, facts: CampusFacts, *, alerts: AlertWatch | None = None, timeout: float = 5.0
) -> ScenarioResult:
    """A terminal loses power (the broker sends its will), then comes back and works."""
    result = ScenarioResult("device crash")
    since = _mark(alerts)
    terminal = fleet[facts.gate_exit_device]
    await terminal.crash()
    await _expect_alert(result, alerts, "device_offline", facts.gate_exit_device, since, timeout)
    await terminal.start()
    eid = terminal.swipe(facts.resident_cards[0], direction="out")
    result.expect("first swipe after the restart", "admit/ok", await _final(terminal, eid, timeout))
    return result


async def forged_commands(
    fleet: Fleet,
    facts: CampusFacts,
    *,
    alerts: AlertWatch | None = None,
    timeout: float = 5.0,
    attacker_account: BrokerAddress | None = None,
) -> ScenarioResult:
    """An attacker on the broker replays a recorded admit and forges another for an outsider's
    swipe: the terminal refuses both (and counts them), and the door stays shut.

    `attacker_account`: the broker account the attacker holds (default the fleet's URL).
    Where the broker's ACL lets only the gateway write commands, that is a stolen gateway
    password: the signature is what still keeps the door shut."""
    result = ScenarioResult("forged and replayed commands")
    terminal = fleet[facts.gate_device]
    if terminal.verifier is None:
        result.expect("the terminal's pinned key", "pinned", "none: commands are not signed")
        return result
    genuine = terminal.swipe(facts.resident_cards[0])
    result.expect("a resident", "admit/ok", await _final(terminal, genuine, timeout))
    recorded = next(
        (c.payload for c in terminal.commands if c.body and c.body.get("event_id") == genuine),
        None,
    )
    victim = terminal.swipe(facts.outsider_card)
    before = sum(terminal.refused_commands.values())
    attacker = MqttClient(
        attacker_account or fleet.address, client_id=f"sim-attacker-{secrets.token_hex(3)}"
    )
    await attacker.connect(timeout)
    try:
        forged = _json_bytes(
            {
                "type": "decision",
                "event_id": victim,
                "decision": "admit",
                "reason": "ok",
                "message": "Welcome",
                "unlock_ms": 3000,
                "late": False,
                "seq": time.time_ns() // 1000,
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "kid": terminal.verifier.kid,
            }
        )
        signature = Ed25519PrivateKey.generate().sign(terminal.device_id.encode() + b"\n" + forged)
        sig = base64.urlsafe_b64encode(signature).rstrip(b"=")
        attacker.publish(terminal.commands_topic, forged[:-1] + b',"sig":"' + sig + b'"}')
        if recorded is not None:
            attacker.publish(terminal.commands_topic, recorded)
        expected = before + (2 if recorded is not None else 1)
        for _ in range(int(timeout / 0.05)):  # polled: refusals wake no watcher
            if sum(terminal.refused_commands.values()) >= expected:
                break
            await asyncio.sleep(0.05)
    finally:
        await attacker.close()
    result.expect(
        "refused (replayed, forged)",
        str(expected - before),
        str(sum(terminal.refused_commands.values()) - before),
    )
    result.expect("the outsider", "deny/unknown_card", await _final(terminal, victim, timeout))
    result.expect(
        "door opened for the outsider", "no", "yes" if victim in terminal.unlocked else "no"
    )
    return result


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


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
        _outcome(await terminal.wait_pending(eid, timeout)),
    )
    result.expect(
        "after the window",
        "deny/temperature_required",
        await _final(terminal, eid, window_s + timeout),
    )
    return result


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


# ---- helpers ---------------------------------------------------------------------


def _scanner(fleet: Fleet, facts: CampusFacts) -> SimTerminal:
    if facts.scanner_device is not None and facts.scanner_device in fleet:
        return fleet[facts.scanner_device]
    return fleet[facts.temperature_device]


async def _decision(terminal: SimTerminal, event_id: str, timeout: float) -> dict[str, Any] | None:
    try:
        return await terminal.decision(event_id, timeout)
    except TimeoutError:
        return None


def _display_check(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no decision"
    message = str(decision.get("message", "")).lower()
    leaked = [w for w in HEALTH_WORDS if w in message]
    return f"message mentions {leaked}" if leaked else "no health detail"


# ---- continuous traffic for the demo -----------------------------------------------


@dataclass(slots=True)
class TrafficStats:
    """What `traffic` sent, by kind of action, and the card events it sent per device."""

    actions: Counter[str] = field(default_factory=Counter)
    card_events: list[tuple[str, str]] = field(default_factory=list)  # (device id, event id)

    def decided(self, fleet: Fleet) -> int:
        return sum(1 for device, eid in self.card_events if eid in fleet[device].decided_at)


class _Mix:
    """Picks realistic actions; remembers who is inside which zone so exits make sense."""

    WEIGHTS = (
        ("dorm_in", 25.0),
        ("dorm_out", 18.0),
        ("gate_in", 14.0),
        ("gate_out", 10.0),
        ("teaching", 12.0),
        ("lab", 8.0),
        ("office", 6.0),
        ("door_cycle", 3.0),
        ("outsider", 1.2),
        ("unauthorized", 1.2),
        ("inactive", 0.6),
        ("temperature_invalid", 0.5),
        ("isolation_breach", 0.4),
        ("fever", 0.25),
        ("door_forced", 0.1),
    )

    def __init__(self, fleet: Fleet, facts: CampusFacts, rng: random.Random) -> None:
        self.fleet = fleet
        self.facts = facts
        self.rng = rng
        reserved = set(facts.fever_cards)
        ok = [p for p in facts.people if p.active and not p.isolated and p.cards[0] not in reserved]
        self.students = [p for p in ok if p.kind == "student"]
        self.staff = [p for p in ok if p.kind == "staff"]
        self.everyone = [p for p in ok if p.kind != "visitor"]
        self.inactive = [p for p in facts.people if not p.active]
        self.isolated = [p for p in facts.people if p.isolated]
        self.fevers = list(facts.fever_cards)
        self.inside: dict[str, list[SimPerson]] = {}
        self.kinds = [k for k, _ in self.WEIGHTS]
        self.weights = [w for _, w in self.WEIGHTS]
        self.labs = [z for z, kind in facts.zone_kinds.items() if kind == "lab"]
        self.teaching = [z for z, kind in facts.zone_kinds.items() if kind == "teaching"]
        self.offices = [z for z, kind in facts.zone_kinds.items() if kind == "office"]

    def pick(self) -> str:
        return self.rng.choices(self.kinds, self.weights)[0]

    def door_of(self, zone: str, direction: str) -> str | None:
        """A door of `zone` that lets one pass in `direction`, and whose terminal we run."""
        doors = [
            d
            for d, z in self.facts.door_zones.items()
            if z == zone and self.facts.door_directions[d] in (direction, "both")
        ]
        for door in doors:
            if f"term-{door}" in self.fleet:
                return door
        return None

    def enter(self, zone: str, person: SimPerson) -> None:
        self.inside.setdefault(zone, []).append(person)

    def leaver(self, zone: str) -> SimPerson | None:
        people = self.inside.get(zone)
        if not people:
            return None
        return people.pop(self.rng.randrange(len(people)))


def _normal_reading(rng: random.Random) -> float:
    return round(min(37.1, max(35.8, rng.gauss(36.5, 0.25))), 1)


async def traffic(
    fleet: Fleet,
    facts: CampusFacts,
    rate_per_s: float,
    stop_event: asyncio.Event,
    *,
    seed: int | None = None,
    heartbeat_every_s: float = 30.0,
    stats: TrafficStats | None = None,
) -> TrafficStats:
    """Play a realistic mix of door traffic at about `rate_per_s` actions per second.

    Mostly residents, staff and students coming and going (with temperature at the
    dormitory main doors, in all three orders), and now and then an outsider, an
    unauthorized student, an inactive card, a bad reading, an isolation breach, a
    fever (each reserved fever card once) or a forced door. Runs until `stop_event`.
    Pass `stats` to watch the counts while it runs. Doors whose terminal is not in
    `fleet` are skipped, so a fleet of some of the campus's devices works too.
    """
    rng = random.Random(seed)
    mix = _Mix(fleet, facts, rng)
    stats = stats if stats is not None else TrafficStats()
    background: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
    next_due = loop.time()
    next_heartbeat = loop.time() + heartbeat_every_s
    try:
        while not stop_event.is_set():
            action = mix.pick()
            if _play(action, mix, stats, background):
                stats.actions[action] += 1
            if loop.time() >= next_heartbeat:
                for terminal in fleet:
                    if terminal.is_connected:
                        terminal.heartbeat()
                next_heartbeat += heartbeat_every_s
            next_due += interval
            delay = next_due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), delay)
            else:
                await asyncio.sleep(0)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    return stats


def _swipe(
    mix: _Mix,
    stats: TrafficStats,
    door: str | None,
    card: str,
    *,
    direction: str | None = None,
    celsius: float | None = None,
) -> bool:
    if door is None:
        return False
    device = f"term-{door}"
    terminal = mix.fleet.get(device)
    if terminal is None or not terminal.is_connected:
        return False
    eid = terminal.swipe(card, direction=direction, celsius=celsius)
    stats.card_events.append((device, eid))
    return True


def _temperature_entry(
    mix: _Mix,
    stats: TrafficStats,
    background: set[asyncio.Task[None]],
    door: str,
    card: str,
    celsius: float,
) -> bool:
    """Card and reading at a temperature door, in one of the three orders a person uses."""
    rng = mix.rng
    terminal = mix.fleet.get(f"term-{door}")
    if terminal is None:
        return False
    scanner_id = f"scan-{door}"
    scanner = mix.fleet.get(scanner_id) or terminal
    style = rng.random()
    if style < 0.3:
        return _swipe(mix, stats, door, card, celsius=celsius)
    if style < 0.6:
        scanner.measure(celsius)
        return _swipe(mix, stats, door, card)
    if not _swipe(mix, stats, door, card):
        return False
    bound = card if rng.random() < 0.5 else None

    async def measure_later() -> None:
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        if scanner.is_connected:
            scanner.measure(celsius, card_uid=bound)

    task = asyncio.create_task(measure_later())
    background.add(task)
    task.add_done_callback(background.discard)
    return True


def _play(action: str, mix: _Mix, stats: TrafficStats, background: set[asyncio.Task[None]]) -> bool:
    rng, facts = mix.rng, mix.facts
    if action == "dorm_in":
        person = rng.choice(mix.students)
        door = mix.door_of(person.dorm or facts.dorm, "in")
        if door is None:
            return False
        mix.enter(person.dorm or facts.dorm, person)
        if door in facts.temperature_doors:
            return _temperature_entry(
                mix, stats, background, door, person.cards[0], _normal_reading(rng)
            )
        return _swipe(mix, stats, door, person.cards[0])
    if action == "dorm_out":
        dorm = rng.choice([z for z, k in facts.zone_kinds.items() if k == "dormitory"])
        person = mix.leaver(dorm) or rng.choice(
            [p for p in mix.students if p.dorm == dorm] or mix.students
        )
        return _swipe(mix, stats, mix.door_of(dorm, "out"), person.cards[-1], direction="out")
    if action == "gate_in":
        person = rng.choice(mix.everyone)
        mix.enter("gate", person)
        return _swipe(mix, stats, mix.door_of("gate", "in"), person.cards[0], direction="in")
    if action == "gate_out":
        person = mix.leaver("gate") or rng.choice(mix.everyone)
        return _swipe(mix, stats, mix.door_of("gate", "out"), person.cards[0], direction="out")
    if action in ("teaching", "lab", "office"):
        return _come_or_go(action, mix, stats)
    if action == "door_cycle":
        door = rng.choice(list(facts.door_zones))
        if f"term-{door}" not in mix.fleet or not mix.fleet[f"term-{door}"].is_connected:
            return False
        terminal = mix.fleet[f"term-{door}"]
        terminal.door("opened")
        terminal.door("held_open" if rng.random() < 0.05 else "closed")
        return True
    if action == "door_forced":
        door = rng.choice(list(facts.door_zones))
        if f"term-{door}" not in mix.fleet:
            return False
        mix.fleet[f"term-{door}"].door("forced")
        return True
    if action == "outsider":
        return _swipe(mix, stats, facts.gate_door, facts.outsider_card)
    if action == "unauthorized":
        return _swipe(mix, stats, facts.lab_door, facts.lab_stranger_card, direction="in")
    if action == "inactive" and mix.inactive:
        return _swipe(mix, stats, facts.gate_door, rng.choice(mix.inactive).cards[0])
    if action == "temperature_invalid":
        card = rng.choice(facts.resident_cards)
        return _swipe(mix, stats, facts.temperature_door, card, celsius=INVALID_C)
    if action == "isolation_breach" and mix.isolated:
        person = rng.choice(mix.isolated)
        door = mix.door_of(person.dorm, "in") if person.dorm else facts.gate_door
        return _swipe(mix, stats, door, person.cards[0], celsius=_normal_reading(rng))
    if action == "fever" and mix.fevers and facts.temperature_device in mix.fleet:
        card = mix.fevers.pop(0)
        return _temperature_entry(mix, stats, background, facts.temperature_door, card, FEVER_C)
    return False


def _come_or_go(kind: str, mix: _Mix, stats: TrafficStats) -> bool:
    rng = mix.rng
    zones = {"teaching": mix.teaching, "lab": mix.labs, "office": mix.offices}[kind]
    if not zones:
        return False
    zone = rng.choice(zones)
    leaving = mix.leaver(zone) if rng.random() < 0.5 else None
    if leaving is not None:
        return _swipe(mix, stats, mix.door_of(zone, "out"), leaving.cards[0], direction="out")
    if kind == "lab":
        college = zone.split("-")[1]
        pool = [p for p in mix.everyone if p.college == college]
    elif kind == "office":
        pool = mix.staff
    else:
        pool = mix.everyone
    if not pool:
        return False
    person = rng.choice(pool)
    mix.enter(zone, person)
    return _swipe(mix, stats, mix.door_of(zone, "in"), person.cards[0], direction="in")
