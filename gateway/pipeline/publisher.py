"""What the gateway sends: decisions to devices, alerts to consoles and integrations."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from devices.codecs.contract_json import CommandSigner, encode_decision
from devices.transports.mqtt import Message, MqttClient
from gateway.domain.alerts import Alert
from gateway.domain.decisions import Decision
from gateway.metrics import Counters
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.topics import Topics

_LOGGER = logging.getLogger(__name__)

# A final decision sent this long after its card event reached the gateway unlocks nothing:
# nobody may be standing at the door any more (GatewayConfig.late_after_s).
LATE_AFTER_S = 10.0
# Decisions expire at the broker a little after that, so a terminal that was offline never
# receives (and acts on) an old one; the slack covers the broker's whole-second clock.
EXPIRY_SLACK_S = 2
LATE_LOG_EVERY_S = 5.0


class Publisher:
    def __init__(
        self,
        client: MqttClient,
        topics: Topics,
        *,
        late_after_s: float = LATE_AFTER_S,
        counters: Counters | None = None,
        signer: CommandSigner | None = None,
    ) -> None:
        self._client = client
        # None: commands go unsigned (CAMPUSGATE_SIGN_COMMANDS=false, e.g. a bench comparison).
        self.signer = signer
        self._topics = topics
        self.late_after_s = late_after_s
        self.decision_expiry_s = int(late_after_s) + EXPIRY_SLACK_S
        self._counters = counters
        self._late_unlogged = 0
        self._late_oldest_s = 0.0
        self._late_logged_at = 0.0

    def send(self, device_id: str, decision: Decision) -> None:
        """Publish a decision (judged late or not by the caller) to a terminal's commands."""
        self._client.publish(
            self._topics.commands(device_id),
            encode_decision(decision, device_id, self.signer),
            qos=1,
            expiry_s=self.decision_expiry_s,
        )

    def judged(self, decision: Decision, arrived: float | None) -> Decision:
        """The decision as it may be sent now: a final one too old for the door is late.

        `arrived` is the perf_counter reading at the card event's receipt; None: not judged.
        """
        if arrived is None or not decision.is_final or decision.late:
            return decision
        age = time.perf_counter() - arrived
        if age <= self.late_after_s:
            return decision
        self._note_late(age)
        return decision.as_late()

    def _note_late(self, age: float) -> None:
        if self._counters is not None:
            self._counters.late += 1
        self._late_unlogged += 1
        self._late_oldest_s = max(self._late_oldest_s, age)
        now = time.monotonic()
        if now - self._late_logged_at >= LATE_LOG_EVERY_S:
            _LOGGER.warning(
                "%d decisions sent late (more than %.0f s after their card event, oldest %.1f s):"
                " sent with late=true and unlock_ms=0, so no door opened for them",
                self._late_unlogged,
                self.late_after_s,
                self._late_oldest_s,
            )
            self._late_unlogged = 0
            self._late_oldest_s = 0.0
            self._late_logged_at = now

    def alert(self, alert: Alert) -> None:
        payload = json.dumps(alert.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()
        self._client.publish(self._topics.alert(alert.kind.value), payload, qos=1)

    def ack(self, message: Message) -> None:
        self._client.ack(message)


class MqttArrival(Arrival):
    """An event from an MQTT terminal: acknowledged to the broker, answered on its topic."""

    __slots__ = ("_publisher", "device_id", "message")

    def __init__(
        self,
        message: Message,
        device_id: str,
        publisher: Publisher,
        received_at: datetime,
        started: float,
    ) -> None:
        super().__init__(received_at, started)
        self.message = message
        self.device_id = device_id
        self._publisher = publisher

    @property
    def redelivered(self) -> bool:
        return self.message.dup

    def ack(self) -> None:
        self._publisher.ack(self.message)

    def reply(self, decision: Decision) -> None:
        self._publisher.send(self.device_id, decision)
