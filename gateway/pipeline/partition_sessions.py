"""The MQTT sessions of a partitioned worker (issue 14).

A worker has its own session (client id = worker id: its presence and last will, alerts,
the signing key, allowlists) and one persistent session per partition it owns, client id
`{prefix}{n}` (`campusgate-p{n}`), subscribed to that partition's device topics
(`P/devices/{id}/events`, `state`, `uploads`, one subscription per device: the topic
scheme is the contract). The broker keeps a partition's session, its subscriptions and its
unacknowledged events while no worker holds it, so whoever takes the partition next
inherits them: nothing is lost when a worker dies.

`PartitionedMqtt` is the worker's own `MqttClient`; the door path uses it unchanged:
`publish` to a device topic goes out on that device's partition session (so a device's
commands keep their order on one session), except retained messages (allowlists), which
go on the worker's own; `ack` goes to the session a message came on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devices.transports.mqtt import BrokerAddress, Message, MqttClient, MqttError, Will
from gateway.pipeline.topics import Topics

_LOGGER = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 reason: another client connected with this client id
JUDGE_AFTER_S = 0.5


@dataclass(frozen=True, slots=True)
class SessionMessage(Message):
    """A message with the partition session it came on (its `mid` is that session's)."""

    session: MqttClient | None = None


def device_topics(topics: Topics, device_id: str) -> list[str]:
    prefix = topics.prefix
    return [f"{prefix}/devices/{device_id}/{leaf}" for leaf in ("events", "state", "uploads")]


class PartitionedMqtt(MqttClient):
    """The worker's own session plus one persistent session per owned partition."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        worker_id: str,
        topics: Topics,
        client_prefix: str,
        partition_of_device: Callable[[str], int | None],
        keepalive: int = 30,
        receive_maximum: int | None = None,
        will: Will | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        # The worker's own session holds nothing worth keeping: a clean one.
        super().__init__(
            address,
            client_id=worker_id,
            clean_start=True,
            manual_ack=True,
            keepalive=keepalive,
            will=will,
            on_connected=on_connected,
            session_expiry_s=0,
        )
        self._topics = topics
        self._client_prefix = client_prefix
        self._partition_of_device = partition_of_device
        self._partition_keepalive = keepalive
        self._partition_receive_maximum = receive_maximum
        self.sessions: dict[int, MqttClient] = {}
        self._devices_of: dict[int, set[str]] = {}  # partition -> device ids subscribed
        self._partition_held = False
        self._judging: set[asyncio.Task[None]] = set()
        self.watching_unknown = False
        # Called (on the loop) when the broker gave a partition's session to someone else.
        self.on_taken_over: Callable[[int], None] | None = None
        # Whether this worker is sure it still holds a partition's lease (renewed lately).
        self.lease_fresh: Callable[[], bool] = lambda: True

    # ---- partitions ------------------------------------------------------------

    def session_id(self, partition: int) -> str:
        return f"{self._client_prefix}{partition}"

    async def open_partition(self, partition: int, device_ids: Sequence[str]) -> None:
        """Connect the partition's persistent session, subscribed to its devices' topics."""
        subscriptions = [(t, 1) for d in sorted(device_ids) for t in device_topics(self._topics, d)]
        session = MqttClient(
            self.address,
            client_id=self.session_id(partition),
            clean_start=False,
            manual_ack=True,
            subscriptions=subscriptions,
            keepalive=self._partition_keepalive,
            receive_maximum=self._partition_receive_maximum,
            on_lost=lambda reason: self._lost(partition, reason),
        )
        session.set_handler(lambda batch: self._deliver_partition(partition, session, batch))
        if self._partition_held:
            session.hold()
        self.sessions[partition] = session
        self._devices_of[partition] = set(device_ids)
        try:
            await session.connect()
        except BaseException:
            self.sessions.pop(partition, None)
            self._devices_of.pop(partition, None)
            await session.close()
            raise

    async def close_partition(self, partition: int) -> None:
        """Close the partition's session cleanly; the broker keeps it for the next owner."""
        session = self.sessions.pop(partition, None)
        self._devices_of.pop(partition, None)
        if session is not None:
            await session.close()

    def hold_partition(self, partition: int) -> None:
        session = self.sessions.get(partition)
        if session is not None:
            session.hold()

    def sync_devices(self, partition: int, device_ids: set[str]) -> None:
        """Follow a roster reload: subscribe added devices, unsubscribe removed ones."""
        session = self.sessions.get(partition)
        if session is None:
            return
        current = self._devices_of.setdefault(partition, set())
        for device_id in sorted(device_ids - current):
            for topic in device_topics(self._topics, device_id):
                session.subscribe(topic, 1)
        for device_id in sorted(current - device_ids):
            for topic in device_topics(self._topics, device_id):
                session.unsubscribe(topic)
        if device_ids != current:
            _LOGGER.info(
                "partition %d: subscribed %d devices, unsubscribed %d",
                partition,
                len(device_ids - current),
                len(current - device_ids),
            )
        self._devices_of[partition] = set(device_ids)

    @property
    def owned(self) -> list[int]:
        return sorted(self.sessions)

    def _lost(self, partition: int, reason: int | None) -> bool:
        """Reconnect a partition's dropped session, unless another worker may have it now.

        A worker must never fight another over a session. MQTT 5 may say so (reason 0x8E,
        session taken over); Mosquitto 2.0 and MQTT 3.1.1 just close the connection. While
        this worker's lease is fresh nobody else can hold the partition: reconnect. Else,
        `_judge` tells a takeover (the broker kept this worker's own connection) from the
        broker or the network going away (it dropped that one too).
        """
        if reason == SESSION_TAKEN_OVER:
            _LOGGER.warning(
                "partition %d: the broker gave session %s to another worker; not reconnecting",
                partition,
                self.session_id(partition),
            )
            self._forget_soon(partition)
            return False
        if self.lease_fresh():
            return True
        session = self.sessions.get(partition)
        if session is not None:
            task = asyncio.ensure_future(self._judge(partition, session))
            self._judging.add(task)
            task.add_done_callback(self._judging.discard)
        return False

    async def _judge(self, partition: int, session: MqttClient) -> None:
        await asyncio.sleep(JUDGE_AFTER_S)  # a broker going away drops our own session too
        if self.sessions.get(partition) is not session:
            return
        if self.is_connected:
            _LOGGER.warning(
                "partition %d: session %s dropped while this worker's own stayed up and its "
                "lease is unconfirmed: taken to be another worker's, not reconnecting",
                partition,
                self.session_id(partition),
            )
            self._forget(partition)  # the lease loop opens it again if the lease is ours
            return
        # The broker is away for this worker too: reopen once its own session is back.
        await self._connected.wait()
        if self._closing or self.sessions.get(partition) is not session:
            return
        devices = sorted(self._devices_of.get(partition, ()))
        self.sessions.pop(partition, None)
        await session.close()
        try:
            await self.open_partition(partition, devices)
        except MqttError as exc:
            _LOGGER.warning("partition %d: session not reopened (%s)", partition, exc)
            if self.on_taken_over is not None:
                self.on_taken_over(partition)

    def _forget_soon(self, partition: int) -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(self._forget, partition)

    def _forget(self, partition: int) -> None:
        session = self.sessions.pop(partition, None)
        self._devices_of.pop(partition, None)
        if session is not None:
            task = asyncio.ensure_future(session.close())
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        if self.on_taken_over is not None:
            self.on_taken_over(partition)

    def _deliver_partition(
        self, partition: int, session: MqttClient, batch: Sequence[Message]
    ) -> None:
        if self._on_messages is None:
            return
        tagged: list[Message] = []
        for m in batch:
            parsed = self._topics.parse(m.topic)
            owner = self._partition_of_device(parsed[0]) if parsed else None
            if owner is not None and owner != partition:
                # A subscription left in the broker's session from before the device moved
                # to a door of another partition: that partition's session gets it too.
                if m.qos > 0:
                    session.ack(m)
                session.unsubscribe(m.topic)
                continue
            tagged.append(
                SessionMessage(
                    m.topic, m.payload, m.qos, m.retain, m.mid, m.dup, m.expiry_s, session
                )
            )
        if tagged:
            try:
                self._on_messages(tagged)
            except Exception:  # the receiver's bug must not kill the session
                _LOGGER.exception(
                    "partition %d: handler failed on %d messages", partition, len(tagged)
                )

    def watch_unknown(self, wanted: bool) -> None:
        """Receive every device's events at QoS 0 on this worker's own session, to alert
        on ids not in the roster (one worker does: the owner of partition 0). Events of
        registered devices are ignored there: their partition's session has them."""
        topic = self._topics.events
        if wanted == self.watching_unknown:
            return
        self.watching_unknown = wanted
        if wanted:
            self.subscribe(topic, 0)
        else:
            self.unsubscribe(topic)

    def _deliver(self, batch: list[Message]) -> None:
        # This worker's own session: only the events of devices the roster does not know.
        unknown = []
        for m in batch:
            parsed = self._topics.parse(m.topic)
            if (
                parsed is not None
                and parsed[1] == "events"
                and self._partition_of_device(parsed[0]) is None
            ):
                unknown.append(m)
        if unknown:
            super()._deliver(unknown)

    # ---- the MqttClient surface the door path uses ------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry_s: int | None = None,
    ) -> None:
        parsed = self._topics.parse(topic) if not retain else None
        # Retained messages (allowlists) go on the worker's own session: NATS stores one
        # synchronously in the connection's read loop, and while its retained-message
        # stream elects a leader (4-9 s after a node dies) each stalls its connection for
        # the 4 s of a JetStream request, events, acks and decisions behind it.
        if parsed is not None:
            partition = self._partition_of_device(parsed[0])
            session = self.sessions.get(partition) if partition is not None else None
            if session is not None and session.is_connected:
                session.publish(topic, payload, qos=qos, retain=retain, expiry_s=expiry_s)
                return
        super().publish(topic, payload, qos=qos, retain=retain, expiry_s=expiry_s)

    def ack(self, message: Message) -> None:
        if isinstance(message, SessionMessage) and message.session is not None:
            # Only on the session it came on: another session's mid is another message.
            if message.session.is_connected:
                message.session.ack(message)
            return
        super().ack(message)

    def hold(self) -> None:
        super().hold()
        self._partition_held = True
        for session in self.sessions.values():
            session.hold()

    def release(self) -> None:
        self._partition_held = False
        for session in self.sessions.values():
            session.release()
        super().release()

    @property
    def held(self) -> int:
        return super().held + sum(s.held for s in self.sessions.values())

    async def close(self) -> None:
        for task in list(self._judging):
            task.cancel()
        for partition in list(self.sessions):
            with contextlib.suppress(Exception):
                await self.close_partition(partition)
        await super().close()
