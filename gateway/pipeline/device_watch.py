"""Device presence: retained state and last will, heartbeats, unknown device ids."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import asyncpg

from devices.codecs.contract_json import decode_state
from gateway.domain.alerts import Alert, AlertKind
from gateway.domain.roster import Device
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.journal import Journal
from gateway.store import alerts as alert_store
from gateway.store.db import DATABASE_ERRORS, acquire
from gateway.store.devices import device_states, touch_devices

_LOGGER = logging.getLogger(__name__)

UNKNOWN_DEVICE_REALERT_S = 600.0
TOUCH_INTERVAL_S = 5.0
DEADLINE_S = 10.0  # a hung connection must not hold the touch loop (or a stop) for ever


class DeviceWatch:
    """Raises `device_offline` when a device goes dark and resolves it when it is back."""

    def __init__(
        self, pool: asyncpg.Pool, journal: Journal, alerter: Alerter, counters: Counters
    ) -> None:
        self._pool = pool
        self._journal = journal
        self._alerter = alerter
        self._counters = counters
        self._offline: dict[str, Alert] = {}
        self._unknown_alerted: dict[str, float] = {}
        self._seen: dict[str, datetime] = {}
        # Last known presence per device (retained state, last will, the store at start).
        self._online: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with acquire(self._pool, DEADLINE_S) as conn:
            for alert in await alert_store.open_alerts(conn, AlertKind.DEVICE_OFFLINE):
                if alert.device:
                    self._offline[alert.device] = alert
            self._online = {d: online for d, (online, _, _) in (await device_states(conn)).items()}
        self._task = asyncio.create_task(self._touch_loop(), name="device-touch")

    async def adopt(self, device_ids: set[str]) -> None:
        """Take over devices from another worker (a partition changed hands): their open
        `device_offline` alerts and last states as the store has them now, so a drop the
        last owner alerted is not alerted again."""
        if not device_ids:
            return
        async with acquire(self._pool, DEADLINE_S) as conn:
            alerts = await alert_store.open_alerts(conn, AlertKind.DEVICE_OFFLINE)
            states = await device_states(conn)
        open_now = {a.device: a for a in alerts if a.device in device_ids}
        for device_id in device_ids:
            alert = open_now.get(device_id)
            if alert is not None:
                self._offline[device_id] = alert
            else:
                self._offline.pop(device_id, None)
            if device_id in states:
                self._online[device_id] = states[device_id][0]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush_seen()

    def presence(self) -> tuple[int, int]:
        """(online, offline): devices by their last known state."""
        online = sum(self._online.values())
        return online, len(self._online) - online

    def is_online(self, device_id: str) -> bool | None:
        """The device's last known state; None when none was ever heard."""
        return self._online.get(device_id)

    def seen(self, device_id: str) -> None:
        self._seen[device_id] = datetime.now(UTC)

    def on_state(self, device: Device, payload: bytes, door_zone: str | None) -> None:
        online = decode_state(payload)
        if online is None:
            self._counters.reject("bad_state")
            _LOGGER.warning("device %s: unreadable state payload %r", device.id, payload[:200])
            return
        self.set_online(device, online, door_zone)

    def set_online(self, device: Device, online: bool, door_zone: str | None) -> None:
        """Record a device's presence; raise or resolve its `device_offline` alert."""
        now = datetime.now(UTC)
        self._online[device.id] = online
        open_alert = self._offline.get(device.id)
        if online and open_alert is not None:
            del self._offline[device.id]
            self._alerter.resolve(open_alert, note="device back online")
        elif not online and open_alert is None:
            self._offline[device.id] = self._alerter.raise_alert(
                AlertKind.DEVICE_OFFLINE, now, door=device.door_id, zone=door_zone, device=device.id
            )
        self._journal.current().device_states.append((device.id, online, now, None))
        self._journal.kick()

    def on_unknown(self, device_id: str, event_id: str) -> None:
        """A valid event from an unregistered device: alert (at most every ten minutes per id)."""
        self._counters.unknown_device += 1
        now = time.monotonic()
        last = self._unknown_alerted.get(device_id)
        _LOGGER.warning("event %s from unregistered device %r: not decided", event_id, device_id)
        if last is not None and now - last < UNKNOWN_DEVICE_REALERT_S:
            return
        if len(self._unknown_alerted) > 10_000:  # ids are attacker-chosen: keep the map bounded
            self._unknown_alerted.clear()
        self._unknown_alerted[device_id] = now
        self._alerter.raise_alert(
            AlertKind.UNKNOWN_DEVICE,
            datetime.now(UTC),
            device=device_id[:128],
            detail={"event_id": event_id},
        )

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_INTERVAL_S)
            await self._flush_seen()

    async def _flush_seen(self) -> None:
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        try:
            async with acquire(self._pool, DEADLINE_S) as conn:
                await touch_devices(conn, seen)
        except DATABASE_ERRORS as exc:
            _LOGGER.warning("could not record when devices were last seen: %s", exc)
