"""Routes each received event: validate, recognise duplicates, hand to the door desk.

MQTT messages enter through `on_messages`; other transports (serial readers) make
their own `Arrival` and enter through `deliver`. Either way a repeated event is
answered here, in one place, and a new one is marked in flight before the desk sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from devices.codecs.contract_json import EventRejected, decode_event
from devices.transports.mqtt import Message
from gateway.domain.events import (
    CardEvent,
    DoorEvent,
    HeartbeatEvent,
    QrEvent,
    TemperatureEvent,
    ThermalFrameEvent,
)
from gateway.domain.roster import Device, Door
from gateway.metrics import Counters
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.dedupe import Duplicates
from gateway.pipeline.device_clocks import DeviceClocks
from gateway.pipeline.device_watch import DeviceWatch
from gateway.pipeline.doors import DoorDesk
from gateway.pipeline.publisher import MqttArrival, Publisher
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.topics import Topics
from gateway.pipeline.visitor_qr import QrReader

_LOGGER = logging.getLogger(__name__)


class Ingest:
    def __init__(
        self,
        *,
        topics: Topics,
        roster: RosterState,
        desk: DoorDesk,
        devices: DeviceWatch,
        clocks: DeviceClocks,
        duplicates: Duplicates,
        publisher: Publisher,
        counters: Counters,
        qr: QrReader | None = None,
    ) -> None:
        self._topics = topics
        self._roster = roster
        self._desk = desk
        self._devices = devices
        self._clocks = clocks
        self._duplicates = duplicates
        self._publisher = publisher
        self._counters = counters
        # Visitor QR tokens; without a reader none verifies (each is an unknown card).
        self._qr = qr or QrReader(None, counters)

    def on_messages(self, messages: Sequence[Message]) -> None:
        received_at = datetime.now(UTC)
        started = time.perf_counter()
        for message in messages:
            try:
                self._route(message, received_at, started)
            except Exception:  # a bug on one message must not strand the rest of the batch
                self._counters.reject("internal_error")
                _LOGGER.exception("failed to handle message on %s", message.topic)
                self._publisher.ack(message)

    def _route(self, message: Message, received_at: datetime, started: float) -> None:
        parsed = self._topics.parse(message.topic)
        if parsed is None:
            self._publisher.ack(message)
            return
        device_id, leaf = parsed
        if leaf == "state":
            device = self._roster.index.device(device_id)
            if device is not None:
                door = self._roster.index.door(device.door_id)
                self._devices.on_state(device, message.payload, door.zone_id if door else None)
            self._publisher.ack(message)
            return
        if leaf != "events":
            self._publisher.ack(message)
            return
        arrival = MqttArrival(message, device_id, self._publisher, received_at, started)
        self._on_event(arrival, device_id, message.payload)

    def _on_event(self, arrival: Arrival, device_id: str, payload: bytes) -> None:
        self._counters.received += 1
        try:
            event = decode_event(device_id, payload)
        except EventRejected as exc:
            self._counters.reject(exc.cause)
            _LOGGER.warning("device %s: rejected event (%s): %s", device_id, exc.cause, exc)
            arrival.ack()
            return
        index = self._roster.index
        device = index.device(device_id)
        if device is None:
            self._devices.on_unknown(device_id, event.event_id)
            arrival.ack()
            return
        self._devices.seen(device_id)
        door = index.door(device.door_id)
        zone_id = door.zone_id if door is not None else None
        if isinstance(event, HeartbeatEvent):  # its clock counts too: a skewed one is flagged
            self._clocks.stamp(
                device_id, event.ts, arrival.received_at, door=device.door_id, zone=zone_id
            )
            arrival.ack()
            return
        if self._duplicates.repeat(arrival, (device_id, event.event_id)):
            return
        if isinstance(event, QrEvent):
            event = self._qr.card_event(event)
        if door is None:  # the store's foreign keys make this a roster mid-reload race
            self._counters.reject("no_door")
            _LOGGER.error("device %s has no door %s in the roster", device_id, device.door_id)
            arrival.ack()
            return
        arrival.at = self._clocks.stamp(
            device_id, event.ts, arrival.received_at, door=door.id, zone=door.zone_id
        )
        self._dispatch(arrival, event, device, door)

    def deliver(self, arrival: Arrival, event: CardEvent, device: Device, door: Door) -> None:
        """A card read by a transport that decoded it and found its door (serial readers)."""
        if not self._duplicates.repeat(arrival, (device.id, event.event_id)):
            self._dispatch(arrival, event, device, door)

    def _dispatch(
        self,
        arrival: Arrival,
        event: CardEvent | TemperatureEvent | DoorEvent | ThermalFrameEvent,
        device: Device,
        door: Door,
    ) -> None:
        self._duplicates.begin((device.id, event.event_id))
        if isinstance(event, CardEvent):
            self._desk.on_card(arrival, event, device, door)
        elif isinstance(event, TemperatureEvent):
            self._desk.on_temperature(arrival, event, device, door)
        elif isinstance(event, DoorEvent):
            self._desk.on_door(arrival, event, device, door)
        elif isinstance(event, ThermalFrameEvent):
            self._desk.on_thermal_frame(arrival, event, device, door)
