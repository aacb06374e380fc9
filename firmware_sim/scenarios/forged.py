"""The forged-command scenario: an attacker on the broker replays and forges decisions,
and a terminal that pinned the gateway's key refuses both."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim.campus import CampusFacts
from firmware_sim.command_check import ALG, leaf_hash, root_message
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.scenarios.checks import ScenarioResult, final, json_bytes


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
    result.expect("a resident", "admit/ok", await final(terminal, genuine, timeout))
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
    seq = time.time_ns() // 1000
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        forged = json_bytes(
            {
                "type": "decision",
                "event_id": victim,
                "decision": "admit",
                "reason": "ok",
                "message": "Welcome",
                "unlock_ms": 3000,
                "late": False,
                "alg": ALG,
                "seq": seq,
                "ts": ts,
                "kid": terminal.verifier.kid,
                "batch": seq,
                "leaf_index": 0,
                "tree_size": 1,
            }
        )
        # A well-formed batch of one under the pinned kid, signed with the attacker's key.
        root = leaf_hash(terminal.device_id, forged)
        signature = Ed25519PrivateKey.generate().sign(
            root_message(terminal.verifier.kid, seq, ts, 1, root)
        )
        sig = base64.urlsafe_b64encode(signature).rstrip(b"=")
        attacker.publish(terminal.commands_topic, forged[:-1] + b',"path":[],"sig":"' + sig + b'"}')
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
    result.expect("the outsider", "deny/unknown_card", await final(terminal, victim, timeout))
    result.expect(
        "door opened for the outsider", "no", "yes" if victim in terminal.unlocked else "no"
    )
    return result
