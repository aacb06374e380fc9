"""The publisher signs the decisions of one loop tick as one batch (ed25519-merkle-v1):
real terminals on a real broker verify each command on its own, and refuse a replayed
command of the batch or a sibling sent to the wrong door."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.transports.mqtt import BrokerAddress, Message, MqttClient
from firmware_sim.terminal import SimTerminal
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.pipeline.publisher import Publisher, batch_summary
from gateway.pipeline.signing import Ed25519CommandSigner
from gateway.pipeline.topics import Topics


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def admit(event_id: str) -> Decision:
    return Decision(event_id, Verdict.ADMIT, Reason.OK, "Welcome", 3000)


def received(terminal: SimTerminal) -> list[dict[str, object]]:
    return [c.body for c in terminal.commands if c.body is not None]


async def test_one_tick_of_decisions_is_one_signature_each_door_verifies_its_own(mqtt_url, prefix):
    signer = Ed25519CommandSigner(Ed25519PrivateKey.generate())
    pin = signer.info.public_key
    gateway = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"gw-batch-{prefix}")
    attacker = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"attacker-batch-{prefix}")
    door_a = SimTerminal(mqtt_url, "batch-a", prefix=prefix, command_key=pin)
    door_b = SimTerminal(mqtt_url, "batch-b", prefix=prefix, command_key=pin)
    await gateway.connect()
    await attacker.connect()
    try:
        async with door_a, door_b:
            publisher = Publisher(gateway, Topics(prefix), signer=signer)
            # Three decisions in one tick: nothing is sent until the tick ends.
            publisher.send("batch-a", admit("e-1"))
            publisher.send("batch-b", admit("e-2"))
            publisher.send("batch-a", admit("e-3"))
            assert publisher.batch_sizes == Counter()
            await asyncio.sleep(0)  # the flush runs as the loop's next callback
            assert publisher.batch_sizes == Counter({3: 1})
            await until(lambda: len(received(door_a)) == 2 and len(received(door_b)) == 1)
            bodies = received(door_a) + received(door_b)
            assert sorted(b["event_id"] for b in bodies) == ["e-1", "e-2", "e-3"]
            assert {(b["tree_size"], b["batch"]) for b in bodies} == {(3, bodies[0]["batch"])}
            assert sorted(b["leaf_index"] for b in bodies) == [0, 1, 2]
            payloads = [c.payload for c in door_a.commands + door_b.commands]
            assert len({json.loads(p)["sig"] for p in payloads}) == 1
            assert door_a.refused_commands == {} and door_b.refused_commands == {}

            # A later tick is another batch, here of one, with an empty path.
            publisher.send("batch-b", admit("e-4"))
            await until(lambda: len(received(door_b)) == 2)
            last = door_b.commands[-1].payload
            assert b',"path":[],"sig":"' in last
            assert publisher.batch_sizes == Counter({3: 1, 1: 1})
            assert batch_summary(publisher.batch_sizes) == (
                "4 commands in 2 signatures (mean 2.00, largest 3)"
            )

            # Replaying one command of the batch, and sending door B's sibling to door A.
            first_a = door_a.commands[0].payload
            sibling_b = door_b.commands[0].payload
            attacker.publish(door_a.commands_topic, first_a, qos=1)
            attacker.publish(door_a.commands_topic, sibling_b, qos=1)
            await until(lambda: sum(door_a.refused_commands.values()) >= 2)
            assert door_a.refused_commands == {"replayed": 1, "bad_signature": 1}
            assert len(received(door_a)) == 2 and door_b.refused_commands == {}
    finally:
        await attacker.close()
        await gateway.close()


async def test_without_a_signer_decisions_leave_at_once_unsigned(mqtt_url, prefix):
    gateway = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"gw-plain-{prefix}")
    door = SimTerminal(mqtt_url, "plain-a", prefix=prefix, verify_commands=False)
    await gateway.connect()
    try:
        async with door:
            publisher = Publisher(gateway, Topics(prefix))
            publisher.send("plain-a", admit("e-1"))
            assert publisher.batch_sizes == Counter()
            await until(lambda: len(received(door)) == 1)
            assert "sig" not in received(door)[0] and "path" not in received(door)[0]
    finally:
        await gateway.close()


class BrokenSigner(Ed25519CommandSigner):
    def sign(self, message: bytes) -> bytes:
        raise RuntimeError("the key is gone")


async def test_a_batch_that_cannot_be_signed_is_not_sent_unsigned_nor_acknowledged(
    mqtt_url, prefix, caplog
):
    """A tick whose decisions cannot be signed holds back its acks too: the broker hands
    the event again when the session resumes, instead of it being acknowledged with its
    decision never sent."""
    address = BrokerAddress.parse(mqtt_url)
    topics = Topics(prefix)
    topic = f"{prefix}/test/unsigned-event"
    inbox: list[Message] = []

    def gateway_client() -> MqttClient:
        return MqttClient(
            address,
            client_id=f"gw-broken-{prefix}",
            clean_start=False,
            manual_ack=True,
            subscriptions=[(topic, 1)],
            on_messages=inbox.extend,
        )

    gateway = gateway_client()
    sender = MqttClient(address, client_id=f"sender-broken-{prefix}")
    door = SimTerminal(mqtt_url, "broken-a", prefix=prefix, verify_commands=False)
    await gateway.connect()
    await sender.connect()
    try:
        async with door:
            publisher = Publisher(
                gateway, topics, signer=BrokenSigner(Ed25519PrivateKey.generate())
            )
            sender.publish(topic, b"e-1", qos=1)
            await until(lambda: len(inbox) == 1)
            publisher.send("broken-a", admit("e-1"))
            publisher.ack(inbox[0])
            await asyncio.sleep(0)
            assert "signing a batch of 1 commands failed" in caplog.text
            assert publisher.held_acks == 1
            await gateway.close()
            # The session resumes: the event not acknowledged comes again, and is answered.
            inbox.clear()
            gateway = gateway_client()
            await gateway.connect()
            await until(lambda: len(inbox) == 1)
            assert inbox[0].payload == b"e-1" and inbox[0].dup
            publisher = Publisher(
                gateway, topics, signer=Ed25519CommandSigner(Ed25519PrivateKey.generate())
            )
            publisher.send("broken-a", admit("e-1"))
            publisher.ack(inbox[0])
            await until(lambda: len(received(door)) == 1)
            assert received(door)[0]["event_id"] == "e-1" and "sig" in received(door)[0]
            assert publisher.held_acks == 0
    finally:
        await sender.close()
        await gateway.close()


async def test_a_batch_that_cannot_be_signed_is_not_sent_unsigned(mqtt_url, prefix, caplog):
    signer = BrokenSigner(Ed25519PrivateKey.generate())
    gateway = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"gw-broken-{prefix}")
    door = SimTerminal(mqtt_url, "broken-a", prefix=prefix, verify_commands=False)
    await gateway.connect()
    try:
        async with door:
            publisher = Publisher(gateway, Topics(prefix), signer=signer)
            publisher.send("broken-a", admit("e-1"))
            await asyncio.sleep(0)
            assert "signing a batch of 1 commands failed" in caplog.text
            # The publisher carries on: the next batch is tried afresh.
            publisher.signer = Ed25519CommandSigner(Ed25519PrivateKey.generate())
            publisher.send("broken-a", admit("e-2"))
            await until(lambda: len(received(door)) == 1)
            assert received(door)[0]["event_id"] == "e-2" and "sig" in received(door)[0]
    finally:
        await gateway.close()
