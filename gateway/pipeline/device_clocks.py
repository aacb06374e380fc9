"""The time an event is logged at, and devices whose clocks are badly off (contract section 3).

Decisions are judged by the gateway's clock; the log's time of an event (what contact
tracing, occupancy and reports read) is the device's `ts` when it is plausible:

- at most `AHEAD` after the gateway received it (a clock running ahead is refused), and
- not before the device's floor: the log time of its previous event, or after a
  restart the gateway's last contact with it (`device_status.last_seen`); a clock
  running behind falls below its own past, and
- not more than `max_late` before receipt: an event queued for longer than the
  contact tracer's max stay would change stays that are already stored as final.

Otherwise the receipt time is logged. An event queued at the broker while the gateway
was down passes all three and keeps the time it happened.

A device whose `ts` is refused and off by `SKEW_ALERT` or more raises one `clock_skew`
alert (low); the next plausible event resolves it. The state is one time per
registered device (events of unregistered devices never reach here) and one open
alert per skewed device.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.alerts import Alert, AlertKind
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter

_LOGGER = logging.getLogger(__name__)

AHEAD = timedelta(seconds=5)
SKEW_ALERT = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Stamp:
    """When an event is logged, and whether its device's clock is badly off."""

    at: datetime
    plausible: bool
    skewed: bool


def event_time(
    ts: datetime, received_at: datetime, floor: datetime | None, max_late: timedelta
) -> Stamp:
    """The log time of an event stamped `ts` by its device and received at `received_at`.

    `floor` is the device's previous log time or the gateway's last contact with it.
    """
    lowest = received_at - max_late
    if floor is not None and floor > lowest:
        lowest = floor
    if lowest <= ts <= received_at + AHEAD:
        return Stamp(ts, plausible=True, skewed=False)
    # Refused: badly off when well ahead of receipt, or well below what the device
    # itself reported before (a late event after an outage is never below that).
    skewed = ts - received_at >= SKEW_ALERT or lowest - ts >= SKEW_ALERT
    return Stamp(received_at, plausible=False, skewed=skewed)


class DeviceClocks:
    """Per device: the floor of its next event's time, and its open clock_skew alert."""

    def __init__(
        self,
        alerter: Alerter,
        counters: Counters,
        *,
        max_late: timedelta,
        last_contact: Mapping[str, datetime] | None = None,
        open_alerts: Mapping[str, Alert] | None = None,
    ) -> None:
        self._alerter = alerter
        self._counters = counters
        self._max_late = max_late
        self._floors: dict[str, datetime] = dict(last_contact or {})
        self._skewed: dict[str, Alert] = dict(open_alerts or {})

    def stamp(
        self,
        device_id: str,
        ts: datetime,
        received_at: datetime,
        *,
        door: str | None = None,
        zone: str | None = None,
    ) -> datetime:
        """The log time of this device's event; raises or resolves its clock_skew alert."""
        floor = self._floors.get(device_id)
        stamp = event_time(ts, received_at, floor, self._max_late)
        self._floors[device_id] = stamp.at if floor is None or stamp.at > floor else floor
        if not stamp.plausible:
            self._counters.device_time_refused += 1
        open_alert = self._skewed.get(device_id)
        if stamp.plausible and open_alert is not None:
            del self._skewed[device_id]
            self._alerter.resolve(open_alert, note="device clock back in range")
        elif stamp.skewed and open_alert is None:
            _LOGGER.warning(
                "device %s: clock off by %s (ts %s): logging its events at receipt time",
                device_id,
                ts - received_at,
                ts.isoformat(),
            )
            self._skewed[device_id] = self._alerter.raise_alert(
                AlertKind.CLOCK_SKEW,
                received_at,
                door=door,
                zone=zone,
                device=device_id,
                detail={
                    "device_ts": ts.isoformat(),
                    "received_at": received_at.isoformat(),
                    "skew_s": round((ts - received_at).total_seconds()),
                },
            )
        return stamp.at
