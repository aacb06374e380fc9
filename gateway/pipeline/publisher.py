"""What the gateway sends: decisions to devices, alerts to consoles and integrations."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

from devices.codecs.command_batch import sign_batch
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
BATCH_LOG_EVERY_S = 60.0


class _Command:
    """A decision waiting in the batch for its signature."""

    __slots__ = ("device_id", "fields")

    def __init__(self, device_id: str, fields: dict[str, Any]) -> None:
        self.device_id = device_id
        self.fields = fields


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
        # Signed decisions and the acks behind them, in the order asked, until the batch
        # is signed at the end of this loop tick (one signature for all, see `flush`).
        self._queued: list[_Command | Message] = []
        self.held_acks = 0  # acks not sent because their tick's batch could not be signed
        self.batch_sizes: Counter[int] = Counter()  # commands per signature -> batches
        self._batches_logged_at = time.monotonic()

    def send(self, device_id: str, decision: Decision) -> None:
        """Publish a decision (judged late or not by the caller) to a terminal's commands.

        A signed one waits for the end of this loop tick, to be signed in one batch with
        the others decided in it (`flush`)."""
        if self.signer is None:
            self._publish(device_id, encode_decision(decision))
            return
        self._queue(_Command(device_id, decision.to_wire()))

    def _publish(self, device_id: str, payload: bytes) -> None:
        self._client.publish(
            self._topics.commands(device_id),
            payload,
            qos=1,
            expiry_s=self.decision_expiry_s,
        )

    def _queue(self, item: _Command | Message) -> None:
        if not self._queued:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a script or a test): nothing to batch with
                self._queued.append(item)
                self.flush()
                return
        self._queued.append(item)

    def flush(self) -> None:
        """Sign the decisions queued in this loop tick at once, then send them and the acks.

        Called by the loop right after the tick in which the first of them was queued (a
        journal flush's follow-ups all run in one tick), so a batch waits at most one tick.
        Acks queued behind a decision leave after it, as they would unbatched.
        """
        queued, self._queued = self._queued, []
        if not queued:
            return
        commands = [item for item in queued if isinstance(item, _Command)]
        try:
            payloads = iter(self._signed(commands))
        except Exception:
            # No command of this batch can go out unsigned, and its acks are held back
            # too: an acknowledged event would be logged with its decision never sent.
            # Unacknowledged, the broker hands the events again on the next session
            # resume, and the duplicate memory answers them then.
            self.held_acks += len(queued) - len(commands)
            _LOGGER.exception(
                "signing a batch of %d commands failed: not sent, and %d acks held back "
                "so that the broker delivers those events again",
                len(commands),
                len(queued) - len(commands),
            )
            return
        for item in queued:
            try:
                if isinstance(item, _Command):
                    self._publish(item.device_id, next(payloads))
                else:
                    self._client.ack(item)
            except Exception:  # one failed send must not drop the rest of the batch
                _LOGGER.exception("sending a signed batch's command or ack failed")

    def _signed(self, commands: list[_Command]) -> list[bytes]:
        if not commands:
            return []
        assert self.signer is not None  # only queued when signing
        self.batch_sizes[len(commands)] += 1
        self._log_batches()
        return sign_batch([(c.device_id, c.fields) for c in commands], self.signer)

    def _log_batches(self) -> None:
        now = time.monotonic()
        if now - self._batches_logged_at < BATCH_LOG_EVERY_S:
            return
        self._batches_logged_at = now
        _LOGGER.info("signed command batches so far: %s", batch_summary(self.batch_sizes))

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
        if self._queued:
            self._queue(message)  # after the decisions queued before it
        else:
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


def batch_summary(sizes: Counter[int]) -> str:
    """`N commands in M signatures (mean x, largest y)` from commands-per-batch counts."""
    batches = sum(sizes.values())
    commands = sum(size * n for size, n in sizes.items())
    if not batches:
        return "no signed commands"
    return (
        f"{commands} commands in {batches} signatures "
        f"(mean {commands / batches:.2f}, largest {max(sizes)})"
    )
