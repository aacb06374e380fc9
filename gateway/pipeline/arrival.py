"""An event as it arrived: the clocks read on receipt and its transport's way back.

Every transport (MQTT terminals, serial card readers, next the offline uploads)
hands the door path an `Arrival` of its own kind, so the desk never asks where an
event came from: it calls `ack()` once the event is handled (durable, or dropped)
and `reply(decision)` to answer the device. A new transport is one subclass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from gateway.domain.decisions import Decision


class Arrival(ABC):
    """A received event; `at` is its time in the log, set by ingest (DeviceClocks)."""

    __slots__ = ("at", "received_at", "started")

    def __init__(self, received_at: datetime, started: float) -> None:
        self.received_at = received_at
        self.started = started  # perf_counter at receipt, for the decision latency
        # The event's time in the log: its device's clock when plausible, else the receipt.
        self.at: datetime | None = None

    @property
    def redelivered(self) -> bool:
        """The transport sent it again because it saw no acknowledgement (MQTT's DUP)."""
        return False

    @abstractmethod
    def ack(self) -> None:
        """The event is handled: the transport may forget it."""

    @abstractmethod
    def reply(self, decision: Decision) -> None:
        """Send `decision` (already judged late or not) to the device the event came from."""
