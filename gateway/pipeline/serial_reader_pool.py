"""Card readers on serial lines: RDM6300, Wiegand (through a converter) and OSDP.

For every device of the roster with ``transport: serial`` a reader runs on its
``port`` (``protocol`` and ``baud`` from the manifest): bytes -> codec ->
``CardEvent`` -> the same ingest and door desk as MQTT terminals. The
gateway makes the event id (``s<start time>-<counter>``, unique across
restarts, so the dedupe memory never mistakes a new read for an old one) and
stamps ``ts`` with its own clock. Each read travels as a :class:`SerialArrival`,
whose ``reply`` hands the decision back to its reader: an OSDP reader shows it
(LED, buzzer, lock relay); RDM6300 and Wiegand converters have no way back, so
it is logged. There is no broker to acknowledge, so ``ack`` does nothing.

Presence: a port that is gone (RDM6300, Wiegand) or an OSDP reader that stops
answering the panel's polls stays ``offline_after_s`` before ``device_offline``
is raised; coming back resolves it (through DeviceWatch).

Secure channel keys: ``CAMPUSGATE_OSDP_KEYS`` is a JSON object from device id to
the reader's SCBK in hex (16 bytes), or to ``{"scbk": "<hex>", "address": N}``
for a reader not at OSDP address 0. A reader without a key does not run (anyone on
the line could read and forge card numbers and unlock commands) unless
``CAMPUSGATE_OSDP_ALLOW_INSECURE=true`` allows it for a test bench, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from devices.codecs import osdp as osdp_codec
from devices.codecs.serial_codecs import SERIAL_CODECS, SerialCodec, serial_codec
from devices.codecs.serial_frames import CardRead, Decoder, Rejected, decode_stream
from devices.transports.osdp_panel import OsdpPanel
from devices.transports.serial import SerialLink
from gateway.domain.decisions import Decision
from gateway.domain.events import CardEvent
from gateway.domain.roster import Device, SerialProtocol, Transport
from gateway.metrics import Counters
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.device_watch import DeviceWatch
from gateway.pipeline.ingest import Ingest
from gateway.pipeline.roster_state import RosterState

_LOGGER = logging.getLogger(__name__)

OFFLINE_AFTER_S = 3.0
RECONCILE_S = 2.0
MAX_BUFFER = 256  # more undecoded bytes than any frame: line noise, dropped


@dataclass(frozen=True, slots=True)
class OsdpKey:
    scbk: bytes | None
    address: int = 0


def parse_osdp_keys(text: str | None) -> dict[str, OsdpKey]:
    """Parse ``CAMPUSGATE_OSDP_KEYS``; raise ValueError with a one-line message when wrong."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"CAMPUSGATE_OSDP_KEYS is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("CAMPUSGATE_OSDP_KEYS must be a JSON object of device id to key")
    keys: dict[str, OsdpKey] = {}
    for device_id, value in raw.items():
        entry = value if isinstance(value, dict) else {"scbk": value}
        try:
            scbk = bytes.fromhex(entry["scbk"]) if entry.get("scbk") else None
            address = int(entry.get("address", 0))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"CAMPUSGATE_OSDP_KEYS[{device_id!r}]: {exc}") from None
        if scbk is not None and len(scbk) != 16:
            raise ValueError(f"CAMPUSGATE_OSDP_KEYS[{device_id!r}]: an SCBK has 16 bytes")
        if not 0 <= address <= 126:
            raise ValueError(f"CAMPUSGATE_OSDP_KEYS[{device_id!r}]: address is 0-126")
        keys[device_id] = OsdpKey(scbk, address)
    return keys


class SerialArrival(Arrival):
    """A card read on a serial line: answered at its reader, with no broker to acknowledge."""

    __slots__ = ("_device_id", "_readers")

    def __init__(
        self, readers: SerialReaders, device_id: str, received_at: datetime, started: float
    ) -> None:
        super().__init__(received_at, started)
        self._readers = readers
        self._device_id = device_id

    def ack(self) -> None:
        pass  # the line keeps nothing to redeliver

    def reply(self, decision: Decision) -> None:
        # Looked up when the answer goes out: a reader stopped meanwhile gets none.
        self._readers.feedback(self._device_id, decision)


class _Reader(ABC):
    """One reader's transport and codec; reports cards and presence to SerialReaders."""

    def __init__(self, device: Device, owner: SerialReaders) -> None:
        self.device = device
        self.owner = owner
        self.feedback_log: list[Decision] = []

    @abstractmethod
    def start(self) -> None:
        """Open the port and begin reading."""

    @abstractmethod
    async def close(self) -> None:
        """Stop reading and release the port."""

    def feedback(self, decision: Decision) -> None:
        self.feedback_log.append(decision)
        del self.feedback_log[:-100]
        _LOGGER.info(
            "reader %s (%s, no feedback line): %s %s",
            self.device.id,
            self.device.protocol,
            decision.verdict.value,
            decision.reason.value,
        )


class _StreamReader(_Reader):
    """A stream protocol (RDM6300, Wiegand converter): frames on a byte stream."""

    def __init__(
        self, device: Device, owner: SerialReaders, codec: SerialCodec, decode: Decoder
    ) -> None:
        super().__init__(device, owner)
        self._decode = decode
        self._buffer = b""
        assert device.port is not None
        self.link = SerialLink(
            device.port,
            baudrate=device.baud or codec.default_baud,
            on_data=self._on_data,
            on_connection=lambda up: owner.presence(device.id, up),
        )

    def start(self) -> None:
        self.link.start()

    async def close(self) -> None:
        await self.link.close()

    def _on_data(self, data: bytes) -> None:
        self._buffer, results = decode_stream(self._decode, self._buffer + data)
        if len(self._buffer) > MAX_BUFFER:
            self._buffer = b""
            results.append(Rejected("noise"))
        for result in results:
            if isinstance(result, CardRead):
                self.owner.card(self.device.id, result.card_uid)
            else:
                self.owner.rejected(self.device.id, result)


class _OsdpReader(_Reader):
    """OSDP reader behind a libosdp control panel; shows decisions on LED, buzzer and relay."""

    def __init__(self, device: Device, owner: SerialReaders, key: OsdpKey) -> None:
        super().__init__(device, owner)
        assert device.port is not None
        if key.scbk is None:
            _LOGGER.warning("osdp reader %s has no SCBK: secure channel off", device.id)
        self.panel = OsdpPanel(
            device.port,
            baudrate=device.baud or SERIAL_CODECS[SerialProtocol.OSDP].default_baud,
            address=key.address,
            scbk=key.scbk,
            on_card=self._on_card,
            on_online=lambda up: owner.presence(device.id, up),
        )

    def start(self) -> None:
        self.panel.start()

    async def close(self) -> None:
        await self.panel.close()

    def _on_card(self, fmt: int, length: int, data: bytes) -> None:
        result = osdp_codec.card_read(fmt, length, data)
        if isinstance(result, CardRead):
            self.owner.card(self.device.id, result.card_uid)
        else:
            self.owner.rejected(self.device.id, result)

    def feedback(self, decision: Decision) -> None:
        self.feedback_log.append(decision)
        del self.feedback_log[:-100]
        for command in osdp_codec.feedback(decision.verdict, decision.unlock_ms):
            if not self.panel.submit(command):
                _LOGGER.warning("osdp reader %s refused command %s", self.device.id, command)


def _spec(device: Device) -> tuple[str | None, str | None, int | None]:
    return device.port, device.protocol, device.baud


class InsecureOsdpError(ValueError):
    """OSDP readers without a secure-channel key, and insecure readers not allowed."""


def insecure_osdp_message(device_ids: list[str]) -> str:
    return (
        f"OSDP reader(s) {', '.join(sorted(device_ids))} have no secure-channel key: add each "
        'to CAMPUSGATE_OSDP_KEYS ({"<device id>": "<32 hex digits>"}), or set '
        "CAMPUSGATE_OSDP_ALLOW_INSECURE=true on a test bench only"
    )


class SerialReaders:
    """Runs a reader for each serial device of the roster and follows roster changes."""

    def __init__(
        self,
        *,
        roster: RosterState,
        ingest: Ingest,
        devices: DeviceWatch,
        counters: Counters,
        osdp_keys: Mapping[str, OsdpKey] | None = None,
        allow_insecure_osdp: bool = False,
        offline_after_s: float | None = None,
        reconcile_s: float | None = None,
    ) -> None:
        self._roster = roster
        self._ingest = ingest
        self._devices = devices
        self._counters = counters
        self._osdp_keys = dict(osdp_keys or {})
        self._allow_insecure_osdp = allow_insecure_osdp
        self._refused: set[str] = set()  # keyless OSDP readers already reported
        self._offline_after_s = OFFLINE_AFTER_S if offline_after_s is None else offline_after_s
        self._reconcile_s = RECONCILE_S if reconcile_s is None else reconcile_s
        self._readers: dict[str, _Reader] = {}
        self._offline_timers: dict[str, asyncio.TimerHandle] = {}
        self._boot = f"s{int(time.time() * 1000):x}"
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.on_card: Callable[[CardEvent], None] | None = None  # observers (tests, metrics)

    def reader(self, device_id: str) -> _Reader | None:
        return self._readers.get(device_id)

    def _insecure(self, device: Device) -> bool:
        key = self._osdp_keys.get(device.id)
        return device.protocol == SerialProtocol.OSDP and (key is None or key.scbk is None)

    async def start(self) -> None:
        """Start the readers; InsecureOsdpError when an OSDP reader has no key (not allowed)."""
        if not self._allow_insecure_osdp:
            insecure = [
                d.id
                for d in self._roster.index.devices()
                if d.transport is Transport.SERIAL and d.port is not None and self._insecure(d)
            ]
            if insecure:
                raise InsecureOsdpError(insecure_osdp_message(insecure))
        await self.reconcile()
        self._task = asyncio.create_task(self._reconcile_loop(), name="serial-readers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for timer in self._offline_timers.values():
            timer.cancel()
        self._offline_timers.clear()
        readers, self._readers = self._readers, {}
        await asyncio.gather(*(r.close() for r in readers.values()))

    async def reconcile(self) -> None:
        """Start readers for new serial devices, stop those removed or changed."""
        wanted = {d.id: d for d in self._roster.index.devices() if d.transport is Transport.SERIAL}
        for device_id, reader in list(self._readers.items()):
            device = wanted.get(device_id)
            if device is None or _spec(device) != _spec(reader.device):
                del self._readers[device_id]
                await reader.close()
        for device_id, device in wanted.items():
            if device_id not in self._readers:
                reader = self._make(device)
                if reader is not None:
                    self._readers[device_id] = reader
                    reader.start()
                    _LOGGER.info(
                        "serial reader %s: %s on %s", device_id, device.protocol, device.port
                    )

    def _make(self, device: Device) -> _Reader | None:
        if device.port is None:
            return None
        if device.protocol == SerialProtocol.OSDP:
            if self._insecure(device) and not self._allow_insecure_osdp:
                # Added after the start (an import): refused, and said so once.
                if device.id not in self._refused:
                    self._refused.add(device.id)
                    _LOGGER.error("%s", insecure_osdp_message([device.id]))
                return None
            return _OsdpReader(device, self, self._osdp_keys.get(device.id, OsdpKey(None)))
        codec = serial_codec(device.protocol)
        if codec is None or codec.decode is None:
            _LOGGER.error("device %s: unknown serial protocol %r", device.id, device.protocol)
            return None
        return _StreamReader(device, self, codec, codec.decode)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_s)
            await self.reconcile()

    # ---- what readers report --------------------------------------------------

    def card(self, device_id: str, card_uid: str) -> None:
        index = self._roster.index
        device = index.device(device_id)
        door = index.door(device.door_id) if device is not None else None
        self._counters.received += 1
        if device is None or door is None:
            self._counters.reject("no_door")
            return
        self._devices.seen(device_id)
        self._seq += 1
        event = CardEvent(device_id, f"{self._boot}-{self._seq}", datetime.now(UTC), card_uid)
        arrival = SerialArrival(self, device_id, datetime.now(UTC), time.perf_counter())
        if self.on_card is not None:
            self.on_card(event)
        self._ingest.deliver(arrival, event, device, door)

    def rejected(self, device_id: str, rejected: Rejected) -> None:
        self._counters.reject(f"serial_{rejected.reason}")
        _LOGGER.debug("reader %s: dropped bytes (%s)", device_id, rejected.reason)

    def presence(self, device_id: str, online: bool) -> None:
        timer = self._offline_timers.pop(device_id, None)
        if timer is not None:
            timer.cancel()
        if online:
            self._set_online(device_id, True)
        else:
            loop = asyncio.get_running_loop()
            self._offline_timers[device_id] = loop.call_later(
                self._offline_after_s, self._went_offline, device_id
            )

    def _went_offline(self, device_id: str) -> None:
        self._offline_timers.pop(device_id, None)
        if device_id in self._readers:
            self._set_online(device_id, False)

    def _set_online(self, device_id: str, online: bool) -> None:
        index = self._roster.index
        device = index.device(device_id)
        if device is None:
            return
        door = index.door(device.door_id)
        self._devices.set_online(device, online, door.zone_id if door else None)

    # ---- decisions back -------------------------------------------------------

    def feedback(self, device_id: str, decision: Decision) -> bool:
        """Show a decision at a serial reader; False if the device is not one."""
        reader = self._readers.get(device_id)
        if reader is None:
            return False
        reader.feedback(decision)
        return True
