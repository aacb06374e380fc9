"""Scenarios and traffic against a scripted fake gateway on a real Mosquitto.

The fake answers card events from a table built from the campus facts; it uses
the gateway's own codec to reject payloads, which doubles as a cross-check that
what the simulator sends is what the contract (as the codec reads it) accepts.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from datetime import date

import pytest

from devices.codecs.contract_json import EventRejected, decode_event
from devices.transports.mqtt import BrokerAddress, Message, MqttClient
from firmware_sim import scenarios
from firmware_sim.campus import CampusFacts, generate_campus
from firmware_sim.fleet import Fleet


class FakeGateway:
    """Answers every valid card event by a fixed table: card -> (decision, reason)."""

    def __init__(self, url: str, prefix: str, table: dict[str, tuple[str, str]]) -> None:
        self.table = table
        self.prefix = prefix
        self.rejected: list[str] = []
        self.accepted: list[object] = []
        self.client = MqttClient(
            BrokerAddress.parse(url),
            client_id=f"fake-gw-{secrets.token_hex(3)}",
            on_messages=self._handle,
            subscriptions=[(f"{prefix}/devices/+/events", 1)],
        )

    def _handle(self, batch: Sequence[Message]) -> None:
        for m in batch:
            device = m.topic.split("/")[2]
            try:
                event = decode_event(device, m.payload)
            except EventRejected as exc:
                self.rejected.append(exc.cause)
                continue
            self.accepted.append(event)
            if getattr(event, "type", None) != "card":
                continue
            verdict, reason = self.table.get(event.card_uid, ("admit", "ok"))
            command = {
                "type": "decision",
                "event_id": event.event_id,
                "decision": verdict,
                "reason": reason,
                "message": "Welcome" if verdict == "admit" else "Please see the guard",
                "unlock_ms": 3000 if verdict == "admit" else 0,
            }
            self.client.publish(
                f"{self.prefix}/devices/{device}/commands", json.dumps(command).encode()
            )

    async def __aenter__(self) -> FakeGateway:
        await self.client.connect()
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


@pytest.fixture(scope="module")
def facts() -> CampusFacts:
    return generate_campus(seed=4, people=300, today=date(2026, 11, 28)).facts


def _prefix() -> str:
    return f"simtest{secrets.token_hex(2)}"


async def test_scenarios_report_expected_and_got(mqtt_url: str, facts: CampusFacts) -> None:
    prefix = _prefix()
    table = {facts.outsider_card: ("deny", "unknown_card")}
    devices = [facts.gate_device, facts.gate_exit_device, facts.office_device]
    async with (
        FakeGateway(mqtt_url, prefix, table) as gateway,
        Fleet(mqtt_url, devices, prefix=prefix) as fleet,
    ):
        normal = await scenarios.normal_swipes(fleet, facts, timeout=3)
        assert normal.ok, str(normal)
        assert len(normal.checks) == 4
        dup = await scenarios.duplicate(fleet, facts, timeout=3)
        assert dup.ok, str(dup)
        bad = await scenarios.malformed(fleet, facts, timeout=3)
        assert bad.ok, str(bad)
        # Every malformed payload was one the codec rejects, for its own reason.
        assert len(gateway.rejected) == len(scenarios.malformed_payloads("p", "ts"))
        assert {
            "not_json",
            "missing_field",
            "wrong_type",
            "bad_value",
            "too_large",
            "not_object",
        } <= set(gateway.rejected)
    assert fleet.problems() == []


async def test_a_wrong_gateway_fails_the_scenario(mqtt_url: str, facts: CampusFacts) -> None:
    prefix = _prefix()
    devices = [facts.gate_device, facts.temperature_device]
    async with FakeGateway(mqtt_url, prefix, {}), Fleet(mqtt_url, devices, prefix=prefix) as fleet:
        result = await scenarios.outsider(fleet, facts, timeout=2)
    assert not result.ok
    assert result.checks[0].expected == "deny/unknown_card"
    assert result.checks[0].got == "admit/ok"
    assert "FAIL outsider" in str(result)


async def test_no_gateway_means_no_decision_not_a_hang(mqtt_url: str, facts: CampusFacts) -> None:
    prefix = _prefix()
    devices = [facts.temperature_device, facts.dorm_exit_device]
    async with Fleet(mqtt_url, devices, prefix=prefix) as fleet:
        result = await scenarios.isolation_breach(fleet, facts, timeout=0.3)
    assert not result.ok and result.checks[0].got == "no decision"


async def test_traffic_plays_valid_events_at_the_rate(mqtt_url: str, facts: CampusFacts) -> None:
    prefix = _prefix()
    stop = asyncio.Event()
    async with (
        FakeGateway(mqtt_url, prefix, {}) as gateway,
        Fleet(mqtt_url, facts.mqtt_devices, prefix=prefix) as fleet,
    ):
        task = asyncio.create_task(
            scenarios.traffic(fleet, facts, 200, stop, seed=1, heartbeat_every_s=0.5)
        )
        await asyncio.sleep(1.5)
        stop.set()
        stats = await task
        await asyncio.sleep(0.5)
    sent = sum(stats.actions.values())
    assert 200 <= sent <= 320, stats.actions
    assert stats.actions["dorm_in"] and stats.actions["dorm_out"] and stats.actions["gate_in"]
    assert gateway.rejected == []  # every event the traffic sends is valid
    kinds = {getattr(e, "type", None) for e in gateway.accepted}
    assert {"card", "temperature", "door", "heartbeat"} <= kinds
    assert stats.decided(fleet) == len(stats.card_events)
    assert fleet.problems() == []


def test_every_weighted_traffic_action_has_a_player() -> None:
    """The mix draws actions by weight and plays them from a table: a weight without a
    player would stop the demo's traffic with a KeyError."""
    from firmware_sim.scenarios.traffic import ACTIONS, _Mix

    assert set(ACTIONS) == {kind for kind, _ in _Mix.WEIGHTS}
