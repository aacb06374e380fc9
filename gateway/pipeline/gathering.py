"""The gathering watch: a zone that stays at or above its threshold for its minutes.

`gathering` is not among contract section 5's alert kinds (issue #5 adds it). It is
raised once when a zone has held at least `gathering_threshold` people for
`gathering_minutes`, and resolved by the gateway when the count drops below the
threshold, as `device_offline` is. The watch runs in the gateway because the live
counts are there; open gathering alerts are picked up again after a restart. The
same loop drops entries older than the zones' presence horizons from the counts.

With shared zone counts (gateway/pipeline/shared_occupancy.py) the watch reads the count
all workers share, and only the zones' steward (one worker at a time) watches, so a
gathering over doors of several workers is detected once; a new steward picks up the open
gathering alerts, and its timers start from its first look. The steward also reconciles
the shared counts with the access log every `RECONCILE_EVERY_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.domain.alerts import Alert, AlertKind
from gateway.domain.presence import presence_horizon
from gateway.domain.roster import ZoneKind
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.shared_occupancy import SharedOccupancy
from gateway.policy.occupancy import Occupancy
from gateway.store import alerts as alert_store
from gateway.store import zone_counts
from gateway.store.db import acquire

_LOGGER = logging.getLogger(__name__)

TICK_S = 1.0
EXPIRE_EVERY_S = 60.0
STARTUP_DEADLINE_S = 10.0
RECONCILE_EVERY_S = 30.0
# A place claimed this recently may not be in the access log yet (the journal writes it
# within its deadline, or the spool holds it): the reconciliation keeps it.
RECONCILE_GRACE = timedelta(seconds=60)
RECONCILE_DEADLINE_S = 10.0


class GatheringWatch:
    """Raises and resolves `gathering` alerts from the live occupancy counts."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        roster: RosterState,
        occupancy: Occupancy,
        alerter: Alerter,
        *,
        max_stay_h: float,
        tick_s: float = TICK_S,
        shared: SharedOccupancy | None = None,
    ) -> None:
        self._shared = shared
        self._steward = False  # whether this worker watched as the steward at the last tick
        self._pool = pool
        self._roster = roster
        self._occupancy = occupancy
        self._alerter = alerter
        self._max_stay_h = max_stay_h
        self._tick_s = tick_s
        self._open: dict[str, Alert] = {}
        self._since: dict[str, datetime] = {}  # zone -> since when it is at or above threshold
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with acquire(self._pool, STARTUP_DEADLINE_S) as conn:
            for alert in await alert_store.open_alerts(conn, AlertKind.GATHERING):
                if alert.zone:
                    self._open[alert.zone] = alert
        self._task = asyncio.create_task(self._run(), name="gathering-watch")

    async def _reload_open(self) -> None:
        async with acquire(self._pool, STARTUP_DEADLINE_S) as conn:
            opened = await alert_store.open_alerts(conn, AlertKind.GATHERING)
        self._open = {alert.zone: alert for alert in opened if alert.zone}
        self._since.clear()

    async def reconcile(self, now: datetime) -> None:
        """Rebuild the shared counts from the access log (zones not reconciled lately), and
        resolve device_offline alerts whose raiser is gone but whose device is back."""
        async with acquire(self._pool, RECONCILE_DEADLINE_S) as conn:
            due = await zone_counts.due_for_reconcile(
                conn, now - timedelta(seconds=RECONCILE_EVERY_S * 0.8)
            )
            for zone_id in due:
                changed = await zone_counts.reconcile(
                    conn, zone_id, now, self._max_stay_h, RECONCILE_GRACE
                )
                if changed is not None and changed[0] != changed[1]:
                    _LOGGER.info(
                        "zone %s: shared count %d corrected to %d from the access log",
                        zone_id,
                        *changed,
                    )
            resolved = await alert_store.resolve_back_online(conn)
            if resolved:
                _LOGGER.info("%d device_offline alerts of devices online again resolved", resolved)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self, now: datetime) -> None:
        """Raise or resolve each zone's gathering alert at `now`."""
        index = self._roster.index
        for zone in index.zones():
            threshold = zone.gathering_threshold
            count = (self._shared or self._occupancy).count(zone.id)
            open_alert = self._open.get(zone.id)
            if threshold is None or count < threshold:
                self._since.pop(zone.id, None)
                if open_alert is not None:
                    del self._open[zone.id]
                    self._alerter.resolve(open_alert, note=f"{count} inside, below {threshold}")
                continue
            since = self._since.setdefault(zone.id, now)
            if open_alert is None and now - since >= timedelta(minutes=zone.gathering_minutes):
                self._open[zone.id] = self._alerter.raise_alert(
                    AlertKind.GATHERING,
                    now,
                    zone=zone.id,
                    detail={
                        "people": count,
                        "threshold": threshold,
                        "minutes": zone.gathering_minutes,
                        "since": since.isoformat(),
                    },
                )

    def expire(self, now: datetime) -> int:
        """Drop entries older than their zone's presence horizon from the counts."""
        index = self._roster.index

        def horizon(zone_id: str) -> timedelta:
            zone = index.zone(zone_id)
            return presence_horizon(zone.kind if zone else ZoneKind.OTHER, self._max_stay_h)

        return self._occupancy.expire(now, horizon)

    async def _run(self) -> None:
        last_expire = last_reconcile = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_s)
            now = datetime.now(UTC)
            try:
                if loop.time() - last_expire >= EXPIRE_EVERY_S:
                    last_expire = loop.time()
                    dropped = self.expire(now)
                    if dropped:
                        _LOGGER.info("%d entries without an exit aged out of the counts", dropped)
                if self._shared is None:
                    self.check(now)
                    continue
                if not self._shared.steward:
                    self._steward = False  # another worker watches
                    continue
                if not self._steward:  # just became the steward: take over what is open
                    await self._reload_open()
                    self._steward, last_reconcile = True, 0.0
                if loop.time() - last_reconcile >= RECONCILE_EVERY_S:
                    last_reconcile = loop.time()
                    await self.reconcile(now)
                self.check(now)
            except Exception:  # a bug here must not end the watch for good
                _LOGGER.exception("gathering watch failed; trying again")
