"""Thermal frames at the doors: estimates off the event loop, and tailgating.

A frame's estimate (devices.codecs.thermal_estimator) is CPU work: it runs on a small
thread pool (OpenCV and numpy release the GIL for the heavy parts), so a card
decided while a frame is being read is never kept waiting for it. At most
`MAX_IN_FLIGHT` frames per gateway are being read or queued; a camera that sends
faster than that has its surplus frames logged and dropped, not queued.

`ThermalFrames` takes a camera's frame events: the estimate's nearest face goes
back to the door desk as a temperature reading (to pair with a card), faces behind
it with a fever raise an unpaired `fever` alert, and the head count is judged for
tailgating.

Tailgating: a frame at a door that shows N people is an observation that N
people are passing. It is judged `TAILGATE_SLACK_S` after the pairing window
closes, when every card that could be paired with it has been decided: if
fewer than N admits happened at that door within the window either side of the
frame, more people passed than were admitted and a `tailgating` alert is
raised (at most one per door per window, so a camera filming the same group
over several frames raises it once). Exits that need no temperature count too:
every passage through a camera door is meant to be a card.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol

from devices.codecs.thermal_estimator import (
    Calibration,
    FrameError,
    ThermalEstimate,
    estimate_payload,
)
from gateway.domain.alerts import AlertKind
from gateway.domain.events import ThermalFrameEvent
from gateway.domain.roster import Device, Door
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.arrival import Arrival

_LOGGER = logging.getLogger(__name__)

MAX_IN_FLIGHT = 8
WORKERS = 2
TAILGATE_SLACK_S = 0.5
ADMIT_HISTORY = 256  # admits remembered per door

# What the simulated cameras need (tests/devices/codecs/test_thermal_estimator.py: fitted on seeds 1000-1199).
# Real cameras get theirs from a reference blackbody per device.
FINE_CALIBRATION = Calibration(offset_c=-0.07, ambient_coeff=0.06)  # 160x120 and finer
COARSE_CALIBRATION = Calibration(offset_c=1.52, ambient_coeff=0.05)  # 32x24 and coarser
COARSE_PIXELS = 80 * 60

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="thermal")
    return _POOL


def parse_calibrations(text: str | None) -> dict[str, Calibration]:
    """``CAMPUSGATE_THERMAL_CALIBRATIONS``: a JSON object of camera device id to
    ``{"offset_c": 0.3, "ambient_coeff": 0.05, "ambient_ref_c": 24}`` (each optional).

    Raises ValueError with a one-line message naming what is wrong.
    """
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"CAMPUSGATE_THERMAL_CALIBRATIONS is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(
            "CAMPUSGATE_THERMAL_CALIBRATIONS must be a JSON object of device id to calibration"
        )
    calibrations = {}
    for device_id, fields in document.items():
        where = f"CAMPUSGATE_THERMAL_CALIBRATIONS[{device_id!r}]"
        if not isinstance(fields, dict):
            raise ValueError(f'{where} must be an object such as {{"offset_c": 0.3}}')
        unknown = set(fields) - {"offset_c", "ambient_coeff", "ambient_ref_c"}
        if unknown:
            raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        values = {}
        for name, value in fields.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{where}.{name} must be a number")
            values[name] = float(value)
        if abs(values.get("offset_c", 0.0)) > 10:
            raise ValueError(f"{where}.offset_c of more than 10 C is not a calibration")
        calibrations[device_id] = Calibration(**values)
    return calibrations


def default_calibration(width: int, height: int) -> Calibration:
    return COARSE_CALIBRATION if width * height <= COARSE_PIXELS else FINE_CALIBRATION


class Busy(RuntimeError):
    """Too many frames are being read already."""


class ThermalDesk:
    """Reads frames off the loop and keeps what tailgating needs per door."""

    def __init__(
        self,
        *,
        window_s: float,
        calibrations: Mapping[str, Calibration] | None = None,
        estimator: Callable[..., ThermalEstimate] | None = None,
    ) -> None:
        self.window_s = window_s
        self.calibrations = dict(calibrations or {})
        self._estimator = estimator
        self._in_flight = 0
        self.dropped = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._admits: dict[str, deque[float]] = {}
        self._last_alert: dict[str, float] = {}

    def calibration(self, device_id: str, width: int, height: int) -> Calibration:
        return self.calibrations.get(device_id) or default_calibration(width, height)

    async def estimate(self, event: ThermalFrameEvent) -> ThermalEstimate:
        """The frame's estimate, computed on the thread pool; Busy when it is full."""
        if self._in_flight >= MAX_IN_FLIGHT:
            self.dropped += 1
            raise Busy(f"{self._in_flight} frames in flight")
        self._in_flight += 1
        try:
            estimator = self._estimator or estimate_payload
            calibration = self.calibration(event.device_id, event.width, event.height)
            return await asyncio.get_running_loop().run_in_executor(
                _pool(), estimator, event.width, event.height, event.celsius_f32le, calibration
            )
        finally:
            self._in_flight -= 1

    # ---- tailgating ----------------------------------------------------------

    def admitted(self, door_id: str, at: float) -> None:
        """A card was admitted at the door at monotonic time `at`."""
        admits = self._admits.setdefault(door_id, deque(maxlen=ADMIT_HISTORY))
        admits.append(at)

    def admits_around(self, door_id: str, at: float) -> int:
        """Admits at the door within the pairing window either side of `at`."""
        admits = list(self._admits.get(door_id, ()))
        low = bisect.bisect_left(admits, at - self.window_s)
        high = bisect.bisect_right(admits, at + self.window_s)
        return high - low

    def tailgating(self, door_id: str, people: int, at: float) -> int | None:
        """The admits seen if `people` outnumber them (an alert is due), else None."""
        admits = self.admits_around(door_id, at)
        if people <= admits:
            return None
        last = self._last_alert.get(door_id)
        if last is not None and at - last < self.window_s:
            return None
        self._last_alert[door_id] = at
        return admits


class ReadingDesk(Protocol):
    """What a frame's estimate is handed to: the door desk (gateway.pipeline.doors)."""

    def take_reading(
        self,
        arrival: Arrival,
        event: ThermalFrameEvent,
        device: Device,
        door: Door,
        celsius: float | None,
        detail: dict[str, object],
        now: float,
    ) -> None: ...

    def alert_unpaired_reading(self, celsius: float, door: Door, device_id: str | None) -> None: ...


class ThermalFrames:
    """Frame events at the doors: read off the loop, then a reading and a tailgating check."""

    def __init__(
        self,
        thermal: ThermalDesk,
        readings: ReadingDesk,
        alerter: Alerter,
        counters: Counters,
        *,
        window_s: float,
    ) -> None:
        self._thermal = thermal
        self._readings = readings
        self._alerter = alerter
        self._counters = counters
        self._window_s = window_s

    def on_frame(
        self, arrival: Arrival, event: ThermalFrameEvent, device: Device, door: Door
    ) -> None:
        task = asyncio.create_task(
            self._read(arrival, event, device, door), name=f"thermal-{device.id}"
        )
        self._thermal.tasks.add(task)
        task.add_done_callback(self._thermal.tasks.discard)

    async def _read(
        self, arrival: Arrival, event: ThermalFrameEvent, device: Device, door: Door
    ) -> None:
        detail: dict[str, object] = {"width": event.width, "height": event.height}
        try:
            estimate = await self._thermal.estimate(event)
        except (Busy, FrameError) as exc:
            self._counters.reject("bad_frame" if isinstance(exc, FrameError) else "frame_busy")
            _LOGGER.warning("device %s: frame %s not read: %s", device.id, event.event_id, exc)
            detail["error"] = str(exc)
            estimate = None
        except Exception as exc:  # a bug in the estimator must not leave the message in flight
            self._counters.reject("internal_error")
            _LOGGER.exception("device %s: frame %s failed", device.id, event.event_id)
            detail["error"] = repr(exc)
            estimate = None
        if estimate is not None:
            detail.update(
                people=estimate.people,
                ambient_c=round(estimate.ambient_c, 2),
                faces_c=[face.celsius for face in estimate.faces],
            )
        if estimate is None or estimate.nearest is None:
            self._readings.take_reading(
                arrival, event, device, door, None, detail, time.monotonic()
            )
            return
        now = time.monotonic()
        for face in estimate.faces[1:]:  # someone behind with a fever: nobody's card claims it
            self._readings.alert_unpaired_reading(face.celsius, door, device.id)
        asyncio.get_running_loop().call_later(
            self._window_s + TAILGATE_SLACK_S,
            self._check_tailgating,
            door,
            device.id,
            estimate.people,
            now,
        )
        self._readings.take_reading(
            arrival, event, device, door, estimate.nearest.celsius, detail, now
        )

    def _check_tailgating(self, door: Door, device_id: str, people: int, at: float) -> None:
        admits = self._thermal.tailgating(door.id, people, at)
        if admits is None:
            return
        self._alerter.raise_alert(
            AlertKind.TAILGATING,
            datetime.now(UTC),
            door=door.id,
            zone=door.zone_id,
            device=device_id,
            detail={"people": people, "admitted": admits, "window_s": self._thermal.window_s},
        )
