"""Signed commands end to end: terminals verify the gateway's decisions and refuse (and
count) forged, altered, replayed and unsigned ones, while the gateway keeps deciding."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.contract_json import encode_decision
from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim import scenarios
from firmware_sim.fleet import Fleet
from firmware_sim.terminal import SimTerminal
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.signing import Ed25519CommandSigner, PublicKeyInfo


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def final_payload(terminal: SimTerminal, event_id: str) -> bytes:
    return next(
        c.payload
        for c in terminal.commands
        if c.body and c.body.get("event_id") == event_id and c.body.get("decision") != "pending"
    )


async def test_terminals_refuse_forged_altered_replayed_and_unsigned_commands(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    key = Ed25519PrivateKey.generate()
    info = PublicKeyInfo.of(key)
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"), signing_key=key
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts
    card, later_card = facts.resident_cards[:2]
    attacker = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"attacker-{prefix}")
    # The gate's terminal was given the key when provisioned; the office's pins the first
    # key the gateway publishes retained.
    gate = SimTerminal(mqtt_url, facts.gate_device, prefix=prefix, command_key=info.public_key)
    office = SimTerminal(mqtt_url, facts.office_device, prefix=prefix)
    try:
        async with gate, office:
            await attacker.connect()
            await until(lambda: office.verifier is not None)
            assert office.verifier is not None and office.verifier.kid == info.kid

            genuine = gate.swipe(card)
            decision = await gate.decision(genuine, timeout=10)
            assert decision["decision"] == "admit" and decision["kid"] == info.kid
            assert genuine in gate.unlocked
            staff = await office.decision(office.swipe(facts.staff_card), timeout=10)
            assert staff["decision"] == "admit"
            recorded = final_payload(gate, genuine)
            assert recorded.endswith(b'"}') and b',"sig":"' in recorded

            # An outsider swipes; the attacker races the gateway with admits for that swipe.
            victim = gate.swipe(facts.outsider_card)
            admit = Decision(victim, Verdict.ADMIT, Reason.OK, "Welcome", 3000)
            other_key = Ed25519CommandSigner(Ed25519PrivateKey.generate())
            attacks = {
                "unsigned": encode_decision(admit),
                "forged": encode_decision(admit, gate.device_id, other_key),
                "altered": recorded.replace(genuine.encode(), victim.encode()),
                "replayed": recorded,
            }
            for payload in attacks.values():
                attacker.publish(gate.commands_topic, payload, qos=1)
            # The gate's recorded admit replayed at the office door.
            attacker.publish(office.commands_topic, recorded, qos=1)

            await until(lambda: sum(gate.refused_commands.values()) >= 4)
            await until(lambda: sum(office.refused_commands.values()) >= 1)
            assert gate.refused_commands == {
                "unsigned": 1,
                "wrong_key": 1,
                "bad_signature": 1,
                "replayed": 1,
            }
            assert office.refused_commands == {"bad_signature": 1}
            refused = [c for c in gate.commands if c.refused]
            assert len(refused) == 4 and all(c.body is None for c in refused)

            # The outsider still gets the gateway's own answer, and no door opened for it.
            answer = await gate.decision(victim, timeout=10)
            assert (answer["decision"], answer["reason"]) == ("deny", "unknown_card")
            assert victim not in gate.unlocked and gate.unlocked == [genuine]

            # The gateway kept deciding for everyone throughout.
            after = await gate.decision(gate.swipe(later_card), timeout=10)
            assert after["decision"] == "admit"
            again = await office.decision(office.swipe(facts.staff_card), timeout=10)
            assert again["decision"] == "admit"
            assert len(gate.unlocked) == 2 and len(office.unlocked) == 2
            assert gate.problems() == [] and office.problems() == []
            assert gate.refused_commands == {
                "unsigned": 1,
                "wrong_key": 1,
                "bad_signature": 1,
                "replayed": 1,
            }
    finally:
        await attacker.close()
        await gateway.stop()


async def test_a_terminal_pinned_to_another_key_opens_nothing(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    """After a rotation nobody told the terminal about: every command is refused, counted."""
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        signing_key=Ed25519PrivateKey.generate(),
    )
    gateway = Gateway(config)
    await gateway.start()
    stale_pin = PublicKeyInfo.of(Ed25519PrivateKey.generate()).public_key
    facts = campus.facts
    try:
        async with SimTerminal(
            mqtt_url, facts.gate_device, prefix=prefix, command_key=stale_pin
        ) as gate:
            eid = gate.swipe(facts.resident_cards[0])
            await until(lambda: gate.refused_commands.get("wrong_key", 0) >= 1)
            assert gate.unlocked == [] and eid not in gate.decided_at
    finally:
        await gateway.stop()


async def test_the_demo_scenario_shows_forgeries_refused(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"), signing_key=key
    )
    gateway = Gateway(config)
    await gateway.start()
    pin = PublicKeyInfo.of(key).public_key
    try:
        async with Fleet(
            mqtt_url, [campus.facts.gate_device], prefix=prefix, command_key=pin
        ) as fleet:
            result = await scenarios.forged_commands(fleet, campus.facts, timeout=10)
            assert result.ok, str(result)
            gate = fleet[campus.facts.gate_device]
            assert gate.refused_commands == {"bad_signature": 1, "replayed": 1}
    finally:
        await gateway.stop()
