"""The simulated terminal against a real Mosquitto: state, will, event JSON, decisions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import paho.mqtt.publish as paho_publish
import pytest

from devices.transports.mqtt import BrokerAddress, Message, MqttClient
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.terminal import SimTerminal

HEX = re.compile(r"^[0-9A-Fa-f]+$")


def _device() -> str:
    return f"term-test-{secrets.token_hex(3)}"


class Listener:
    """A plain MQTT client that keeps what it receives."""

    def __init__(self, url: str, topics: Sequence[str]) -> None:
        self.messages: list[Message] = []
        self._arrived = asyncio.Event()
        self.client = MqttClient(
            BrokerAddress.parse(url),
            client_id=f"listener-{secrets.token_hex(3)}",
            on_messages=self._handle,
            subscriptions=[(t, 1) for t in topics],
        )

    def _handle(self, batch: Sequence[Message]) -> None:
        self.messages.extend(batch)
        self._arrived.set()

    async def __aenter__(self) -> Listener:
        await self.client.connect()
        await asyncio.sleep(0.05)  # let the SUBACK (and retained messages) arrive
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def wait(self, pred: Callable[[Message], bool], timeout: float = 3.0) -> Message:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for m in self.messages:
                if pred(m):
                    return m
            remaining = deadline - loop.time()
            assert remaining > 0, f"no matching message; got {self.messages}"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


@pytest.fixture(autouse=True)
def no_retained_signing_key(mqtt_url: str) -> None:
    """These tests answer with unsigned commands on the default prefix `campus`. An earlier
    test's gateway on the session broker (the demo's, say) leaves its command-signing key
    retained there, which a terminal would pin and then refuse those commands: clear it."""
    address = urlsplit(mqtt_url)
    paho_publish.single(
        "campus/gateway/signing-key",
        payload=None,
        qos=1,
        retain=True,
        hostname=address.hostname or "127.0.0.1",
        port=address.port or 1883,
        protocol=paho.MQTTv5,
    )


class Responder:
    """A fake gateway: answers each card event by `answer(event) -> [commands]`."""

    def __init__(self, url: str, answer: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []
        self.client = MqttClient(
            BrokerAddress.parse(url),
            client_id=f"responder-{secrets.token_hex(3)}",
            on_messages=self._handle,
            subscriptions=[("campus/devices/+/events", 1)],
        )

    def _handle(self, batch: Sequence[Message]) -> None:
        for m in batch:
            device = m.topic.split("/")[2]
            event = json.loads(m.payload)
            self.events.append(event)
            if event.get("type") != "card":
                continue
            for command in self.answer(event):
                self.client.publish(
                    f"campus/devices/{device}/commands", json.dumps(command).encode(), qos=1
                )

    async def __aenter__(self) -> Responder:
        await self.client.connect()
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


def _decision(event: dict[str, Any], verdict: str, reason: str) -> dict[str, Any]:
    return {
        "type": "decision",
        "event_id": event["event_id"],
        "decision": verdict,
        "reason": reason,
        "message": "Welcome" if verdict == "admit" else "Please measure your temperature",
        "unlock_ms": 3000 if verdict == "admit" else 0,
    }


def _pending_then_admit(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _decision(event, "pending", "temperature_required"),
        _decision(event, "admit", "ok"),
    ]


# ---- state and last will ---------------------------------------------------------


async def test_start_publishes_retained_online_state(mqtt_url: str) -> None:
    device = _device()
    terminal = SimTerminal(mqtt_url, device)
    await terminal.start()
    try:
        # A subscriber that comes later still sees the state: it is retained.
        async with Listener(mqtt_url, [f"campus/devices/{device}/state"]) as listener:
            m = await listener.wait(lambda m: True)
            assert m.retain
            state = json.loads(m.payload)
            assert state["online"] is True
            assert state["firmware"]
    finally:
        await terminal.stop()


async def test_crash_makes_the_broker_publish_the_retained_will(mqtt_url: str) -> None:
    device = _device()
    topic = f"campus/devices/{device}/state"
    terminal = SimTerminal(mqtt_url, device)
    await terminal.start()
    async with Listener(mqtt_url, [topic]) as listener:
        await listener.wait(lambda m: json.loads(m.payload).get("online") is True)
        await terminal.crash()
        will = await listener.wait(lambda m: json.loads(m.payload).get("online") is False)
        assert json.loads(will.payload) == {"online": False}
    async with Listener(mqtt_url, [topic]) as late:
        retained = await late.wait(lambda m: True)
        assert retained.retain and json.loads(retained.payload) == {"online": False}
    # It comes back: online again.
    await terminal.start()
    try:
        async with Listener(mqtt_url, [topic]) as again:
            m = await again.wait(lambda m: True)
            assert json.loads(m.payload)["online"] is True
    finally:
        await terminal.stop()


async def test_clean_stop_says_offline_without_the_will(mqtt_url: str) -> None:
    device = _device()
    topic = f"campus/devices/{device}/state"
    terminal = SimTerminal(mqtt_url, device)
    await terminal.start()
    async with Listener(mqtt_url, [topic]) as listener:
        await terminal.stop()
        m = await listener.wait(lambda m: json.loads(m.payload).get("online") is False)
        assert json.loads(m.payload)["reason"] == "shutdown"
        await asyncio.sleep(0.2)
        offline = [json.loads(x.payload) for x in listener.messages if b"false" in x.payload]
        assert offline == [json.loads(m.payload)]  # no will on top of it


# ---- events are contract JSON -------------------------------------------------------


def _assert_contract_event(event: dict[str, Any]) -> None:
    assert isinstance(event["event_id"], str) and 1 <= len(event["event_id"]) <= 64
    ts = datetime.fromisoformat(event["ts"])
    assert ts.tzinfo is not None and re.search(r"(Z|[+-]\d\d:\d\d)$", event["ts"])
    kind = event["type"]
    assert kind in ("card", "temperature", "thermal_frame", "door", "heartbeat")
    if "card_uid" in event or kind == "card":
        uid = event["card_uid"]
        assert isinstance(uid, str) and HEX.match(uid) and len(uid) in (8, 10, 14, 20)
    if kind == "card" and "direction" in event:
        assert event["direction"] in ("in", "out")
    if kind == "temperature" or "celsius" in event:
        assert isinstance(event["celsius"], int | float) and not isinstance(event["celsius"], bool)
    if kind == "door":
        assert event["state"] in ("opened", "closed", "forced", "held_open")
    if kind == "heartbeat":
        assert isinstance(event["uptime_s"], int | float)
        assert isinstance(event["firmware"], str)
    assert all(v is not None for v in event.values())


async def test_events_are_contract_json(mqtt_url: str) -> None:
    device = _device()
    async with (
        Listener(mqtt_url, [f"campus/devices/{device}/events"]) as listener,
        SimTerminal(mqtt_url, device) as terminal,
    ):
        ids = [
            terminal.swipe("04A1B2C3"),
            terminal.swipe("04a1b2c3d4e5f6", direction="out", celsius=36.6),
            terminal.measure(36.4),
            terminal.measure(37.0, card_uid="0A0B0C0D0E"),
            terminal.door("forced"),
            terminal.heartbeat(),
        ]
        assert len(set(ids)) == len(ids)
        await listener.wait(lambda m: json.loads(m.payload)["event_id"] == ids[-1])
    events = [json.loads(m.payload) for m in listener.messages]
    assert [e["event_id"] for e in events] == ids
    for event, message in zip(events, listener.messages, strict=True):
        assert message.qos == 1 and not message.retain
        _assert_contract_event(event)
    assert events[0] == {
        "event_id": ids[0],
        "ts": events[0]["ts"],
        "type": "card",
        "card_uid": "04A1B2C3",
    }
    assert events[1]["direction"] == "out" and events[1]["celsius"] == 36.6
    assert events[3]["card_uid"] == "0A0B0C0D0E"


async def test_event_ids_differ_between_runs_of_one_device(mqtt_url: str) -> None:
    device = _device()
    first = SimTerminal(mqtt_url, device)
    second = SimTerminal(mqtt_url, device)
    assert first.next_event_id() != second.next_event_id()


async def test_resend_publishes_the_identical_payload(mqtt_url: str) -> None:
    device = _device()
    async with (
        Listener(mqtt_url, [f"campus/devices/{device}/events"]) as listener,
        SimTerminal(mqtt_url, device) as terminal,
    ):
        eid = terminal.swipe("04A1B2C3")
        terminal.resend(eid)
        terminal.send_raw(b"not json")
        await listener.wait(lambda m: m.payload == b"not json")
    payloads = [m.payload for m in listener.messages]
    assert payloads[0] == payloads[1] == terminal.sent[eid]
    assert terminal.send_count[eid] == 2


# ---- decisions -----------------------------------------------------------------------


async def test_decision_waits_for_the_final_and_records_the_pending(mqtt_url: str) -> None:
    device = _device()
    async with Responder(mqtt_url, _pending_then_admit), SimTerminal(mqtt_url, device) as terminal:
        eid = terminal.swipe("04A1B2C3")
        decision = await terminal.decision(eid, timeout=3)
        assert decision["decision"] == "admit" and decision["reason"] == "ok"
        assert [p["reason"] for p in terminal.pendings(eid)] == ["temperature_required"]
        assert terminal.latency_s(eid) is not None and terminal.latency_s(eid) > 0
        # A duplicate is answered again with the same decision: still no problem.
        terminal.resend(eid)
        finals = await terminal.wait_finals(eid, 2, timeout=3)
        assert len(finals) == 2
        assert terminal.problems() == []
        assert [c.type for c in terminal.commands] == ["decision"] * 4
        assert terminal.undecided() == []


async def test_decision_times_out_without_an_answer(mqtt_url: str) -> None:
    async with SimTerminal(mqtt_url, _device()) as terminal:
        eid = terminal.swipe("04A1B2C3")
        try:
            await terminal.decision(eid, timeout=0.3)
        except TimeoutError as exc:
            assert eid in str(exc)
        else:
            raise AssertionError("expected a TimeoutError")
        assert terminal.undecided() == [eid]


async def test_problems_catch_two_finals_for_one_send(mqtt_url: str) -> None:
    def twice(event: dict[str, Any]) -> list[dict[str, Any]]:
        return [_decision(event, "admit", "ok"), _decision(event, "deny", "fever")]

    async with Responder(mqtt_url, twice), SimTerminal(mqtt_url, _device()) as terminal:
        eid = terminal.swipe("04A1B2C3")
        await terminal.wait_finals(eid, 2, timeout=3)
        found = terminal.problems()
        assert any("2 final decisions" in p for p in found)
        assert any("conflicting" in p for p in found)


async def test_an_admit_for_an_event_id_not_sent_here_opens_nothing(mqtt_url: str) -> None:
    """docs/protocol.md: a terminal acts only on a decision for an event id it sent and
    still waits for; an admit for another id (planted, or another swipe's) opens nothing."""

    def planted(event: dict[str, Any]) -> list[dict[str, Any]]:
        other = _decision({"event_id": "never-sent-here"}, "admit", "ok")
        return [other, _decision(event, "admit", "ok")]

    async with Responder(mqtt_url, planted), SimTerminal(mqtt_url, _device()) as terminal:
        eid = terminal.swipe("04A1B2C3")
        await terminal.decision(eid, timeout=3)
        await terminal.decision("never-sent-here", timeout=3)
        assert terminal.unlocked == [eid]
        assert terminal.unsolicited == ["never-sent-here"]


async def test_unknown_and_broken_commands_are_kept_not_fatal(mqtt_url: str) -> None:
    device = _device()
    async with SimTerminal(mqtt_url, device) as terminal:
        sender = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"s-{secrets.token_hex(3)}")
        await sender.connect()
        topic = f"campus/devices/{device}/commands"
        sender.publish(topic, b"\xff garbage")
        sender.publish(topic, json.dumps({"type": "config", "volume": 3}).encode())
        eid = terminal.swipe("04A1B2C3")
        sender.publish(
            topic, json.dumps(_decision({"event_id": eid}, "deny", "unknown_card")).encode()
        )
        decision = await terminal.decision(eid, timeout=3)
        await sender.close()
    assert decision["reason"] == "unknown_card"
    assert [c.type for c in terminal.commands] == [None, "config", "decision"]


# ---- a fleet on one loop ----------------------------------------------------------------


async def test_fleet_connects_many_terminals_and_each_gets_its_answer(mqtt_url: str) -> None:
    tag = secrets.token_hex(2)
    ids = [f"term-fleet-{tag}-{n}" for n in range(40)]
    seen: list[str] = []
    fleet = Fleet(mqtt_url, ids, on_decision=lambda t, eid, body, now: seen.append(eid))
    async with Responder(mqtt_url, lambda e: [_decision(e, "admit", "ok")]), fleet:
        assert len(fleet) == 40 and all(t.is_connected for t in fleet)
        sent = [(t, t.swipe(f"{n:08X}")) for n, t in enumerate(fleet)]
        decisions = await asyncio.gather(*(t.decision(eid, timeout=5) for t, eid in sent))
    assert all(d["decision"] == "admit" for d in decisions)
    assert sorted(seen) == sorted(eid for _, eid in sent)
    assert fleet.problems() == [] and fleet.undecided() == {}
    for terminal, eid in sent:  # the answer went to the device that asked, and only there
        assert [c.body["event_id"] for c in terminal.commands] == [eid]


async def test_alert_watch_sees_alerts_by_kind_and_device(mqtt_url: str) -> None:
    async with AlertWatch(mqtt_url) as watch:
        publisher = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"p-{secrets.token_hex(3)}")
        await publisher.connect()
        since = watch.mark()
        publisher.publish(
            "campus/alerts/fever", json.dumps({"kind": "fever", "device": "term-a"}).encode()
        )
        alert = await watch.wait_for("fever", device="term-a", since=since, timeout=3)
        assert alert is not None and alert["device"] == "term-a"
        assert await watch.wait_for("outsider", since=since, timeout=0.2) is None
        await publisher.close()


async def test_a_late_decision_or_unlock_ms_0_opens_no_door(mqtt_url) -> None:
    def answer(event: dict[str, Any]) -> list[dict[str, Any]]:
        decision = _decision(event, "admit", "ok")
        if event["card_uid"] == "LATE":
            decision.update(unlock_ms=0, late=True)
        elif event["card_uid"] == "ZERO":
            decision.update(unlock_ms=0, late=False)
        else:
            decision.update(late=False)
        return [decision]

    async with Responder(mqtt_url, answer), SimTerminal(mqtt_url, _device()) as terminal:
        on_time, late, zero = (terminal.swipe(card) for card in ("04A1", "LATE", "ZERO"))
        for eid in (on_time, late, zero):
            await terminal.decision(eid)
        assert terminal.unlocked == [on_time]
        assert terminal.late == [late]


async def test_an_expired_decision_is_not_delivered_to_a_terminal_that_was_away(mqtt_url) -> None:
    device = _device()
    terminal = SimTerminal(mqtt_url, device, session_expiry_s=60)
    await terminal.start()
    await terminal.crash()  # away, its session kept by the broker
    sender = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"gw-{secrets.token_hex(3)}")
    await sender.connect()
    topic = f"campus/devices/{device}/commands"
    body = {"type": "decision", "event_id": "old", "decision": "admit", "reason": "ok"}
    sender.publish(topic, json.dumps({**body, "unlock_ms": 3000}).encode(), expiry_s=1)
    fresh = {**body, "event_id": "fresh", "unlock_ms": 3000}
    await asyncio.sleep(2.2)  # the broker counts whole seconds
    sender.publish(topic, json.dumps(fresh).encode(), expiry_s=30)
    await asyncio.sleep(0.2)
    await sender.close()
    await terminal.start()
    try:
        assert (await terminal.decision("fresh"))["unlock_ms"] == 3000
        assert terminal.finals("old") == []
        assert terminal.commands[0].expiry_s is not None and terminal.commands[0].expiry_s <= 30
    finally:
        await terminal.stop()


async def test_a_terminal_acts_on_the_first_final_decision_per_event_only(mqtt_url) -> None:
    """A repeat of an event's final decision (not flagged DUP: the answer to a republished
    event, or a broker that came back from an older save) opens the door no second time."""

    def answer(event: dict[str, Any]) -> list[dict[str, Any]]:
        decision = {**_decision(event, "admit", "ok"), "late": False}
        return [decision, {**decision}]

    async with Responder(mqtt_url, answer), SimTerminal(mqtt_url, _device()) as terminal:
        eid = terminal.swipe("04A1")
        assert len(await terminal.wait_finals(eid, 2)) == 2  # both messages arrived
        assert terminal.unlocked == [eid]
        assert terminal.repeated_finals == 1


async def test_a_commands_subscription_granted_again_republishes_the_unanswered(
    mqtt_url,
) -> None:
    """A clustered broker may refuse the commands subscription after a reconnect (NATS
    during a leader election) and grant it seconds later, the terminal connected all along:
    answers published meanwhile found nobody, so the grant republishes what is unanswered."""
    device = _device()
    events = f"campus/devices/{device}/events"
    async with Listener(mqtt_url, [events]) as listener, SimTerminal(mqtt_url, device) as t:
        eid = t.swipe("04A1")  # nobody answers
        await listener.wait(lambda m: eid.encode() in m.payload)
        assert t.republished == 0  # the first grant (at start) republishes nothing
        t._client._subscribe_again(t.commands_topic, 1)  # as after a refusal
        await asyncio.sleep(0.3)
        copies = [m for m in listener.messages if json.loads(m.payload)["event_id"] == eid]
        assert (t.republished, len(copies)) == (1, 2)
        assert copies[0].payload == copies[1].payload  # byte for byte
