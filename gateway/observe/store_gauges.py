"""Campus-wide gauges read from the store, cached so a scrape costs at most one query a while.

Refreshed when a scrape finds them older than `ttl_s`, within a deadline, on the
scraper's request (never on the door path); a failed refresh keeps the last values
and says so through `campusgate_store_gauges_up` and their age.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric

from gateway.store.db import acquire
from gateway.store.stats import device_presence_counts, open_alert_counts

_LOGGER = logging.getLogger(__name__)

TTL_S = 10.0
DEADLINE_S = 2.0


class StoreGauges:
    """Open alerts by kind and severity (and, optionally, devices by presence) from the store."""

    def __init__(
        self, pool: asyncpg.Pool | None, *, with_devices: bool, ttl_s: float = TTL_S
    ) -> None:
        self.pool = pool
        self._with_devices = with_devices
        self._ttl_s = ttl_s
        self._alerts: dict[tuple[str, str], int] = {}
        self._devices: tuple[int, int] | None = None
        self._at: float | None = None  # monotonic time of the last successful refresh
        self._tried_at = float("-inf")
        self.up = False

    async def refresh(self, *, force: bool = False) -> None:
        """Query again if the values are older than the TTL (or `force`); never raises."""
        now = time.monotonic()
        if self.pool is None or (not force and now - self._tried_at < self._ttl_s):
            return
        self._tried_at = now
        try:
            async with acquire(self.pool, DEADLINE_S, check_s=None) as conn:
                alerts = await open_alert_counts(conn)
                devices = await device_presence_counts(conn) if self._with_devices else None
        except Exception as exc:  # the database being away is what these gauges report
            self.up = False
            _LOGGER.debug("store gauges not refreshed: %r", exc)
            return
        # Kinds that went to zero stay listed at 0, so a graph drops instead of vanishing.
        self._alerts = dict.fromkeys(self._alerts, 0) | alerts
        self._devices = devices
        self._at = time.monotonic()
        self.up = True

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "campusgate_store_gauges_up",
            "1 if the last refresh of the store gauges (alerts open, devices) succeeded",
            value=1 if self.up else 0,
        )
        yield up
        if self._at is None:
            return
        yield GaugeMetricFamily(
            "campusgate_store_gauges_age_seconds",
            "Age of the values of campusgate_alerts_open (and the API's campusgate_devices)",
            value=time.monotonic() - self._at,
        )
        alerts = GaugeMetricFamily(
            "campusgate_alerts_open",
            "Alerts not resolved (open or acknowledged), campus-wide, by kind and severity",
            labels=["kind", "severity"],
        )
        for (kind, severity), count in sorted(self._alerts.items()):
            alerts.add_metric([kind, severity], count)
        yield alerts
        if self._devices is not None:
            yield devices_family(*self._devices)


def devices_family(online: int, offline: int) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "campusgate_devices",
        "Devices by their last known state (retained state / last will)",
        labels=["state"],
    )
    family.add_metric(["online"], online)
    family.add_metric(["offline"], offline)
    return family
