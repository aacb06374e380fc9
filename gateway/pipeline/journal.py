"""The write-ahead journal: decisions become durable before they are sent.

Everything a decision changes (the access record, alerts it raises, a health
status it sets, a device's online state) goes into the current batch; one
flush writes the batch in one transaction (COPY for the access log) and only
then runs the batch's `after` callbacks, which publish the decisions and
acknowledge the MQTT messages. A gateway killed between the two has its
events redelivered by the broker, finds them in the log, and answers with the
decision it recorded: no event lost, none decided twice. Flushes run back to
back, so a batch is as large as the traffic of one flush (group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from gateway.domain.alerts import Alert, AlertStatus
from gateway.domain.campus import AccessRecord
from gateway.domain.health import HealthRecord
from gateway.metrics import Counters
from gateway.store import access_log, alerts, devices, health
from gateway.store.db import connect

_LOGGER = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", as opposed to "it refused this".
TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


@dataclass(frozen=True, slots=True)
class AlertChange:
    alert_id: str
    status: AlertStatus
    operator: str
    note: str


@dataclass
class Batch:
    records: list[AccessRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    alert_changes: list[AlertChange] = field(default_factory=list)
    health: list[tuple[HealthRecord, str]] = field(default_factory=list)
    device_states: list[tuple[str, bool, datetime, str | None]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.records)
            + len(self.alerts)
            + len(self.alert_changes)
            + len(self.health)
            + len(self.device_states)
            + len(self.after)
        )

    def absorb(self, other: Batch) -> None:
        self.records += other.records
        self.alerts += other.alerts
        self.alert_changes += other.alert_changes
        self.health += other.health
        self.device_states += other.device_states
        self.after += other.after


class Journal:
    """Batches writes and runs their follow-ups once the batch is committed."""

    def __init__(
        self,
        dsn: str,
        *,
        high_water: int = 50_000,
        on_pressure: Callable[[bool], None] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self._counters = counters
        # A connection of its own: a pool's acquire/release costs a reset round trip per flush.
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._batch = Batch()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._high_water = high_water
        self._on_pressure = on_pressure
        self._pressured = False
        self._task: asyncio.Task[None] | None = None
        self._pending: Batch | None = None
        self.flushes = 0
        self.written = 0
        self.failures = 0
        self.dropped = 0

    @property
    def backlog(self) -> int:
        """Items not yet written: the open batch and one being retried."""
        return len(self._batch) + (len(self._pending) if self._pending is not None else 0)

    def current(self) -> Batch:
        """The open batch; add to it, then call `kick()`."""
        return self._batch

    def kick(self) -> None:
        self._idle.clear()
        self._wake.set()
        self._check_pressure()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal")

    async def drain(self) -> None:
        """Wait until everything added so far is written and followed up."""
        while len(self._batch):
            self._wake.set()
            await self._idle.wait()
            if len(self._batch):
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.drain(), 10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await self._conn.close()

    async def _run(self) -> None:
        backoff = 0.1
        self._pending = None
        while True:
            if self._pending is None:
                await self._wake.wait()
                self._wake.clear()
                self._pending, self._batch = self._batch, Batch()
            elif len(self._batch):
                self._pending.absorb(self._batch)
                self._batch = Batch()
            pending = self._pending
            if not len(pending):
                self._pending = None
                self._idle.set()
                continue
            try:
                await self._write(pending)
            except TRANSIENT as exc:
                # The database is away: keep the batch (its messages stay unacknowledged)
                # and try again; intake pauses once the backlog reaches the high-water mark.
                self.failures += 1
                if self._conn is not None and self._conn.is_closed():
                    self._conn = None
                _LOGGER.error(
                    "journal write of %d items failed (%s); retrying in %.1f s",
                    len(pending),
                    exc,
                    backoff,
                )
                self._check_pressure()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception as exc:
                self.failures += 1
                _LOGGER.error(
                    "journal write of %d items refused (%r); salvaging item by item",
                    len(pending),
                    exc,
                )
                await self._salvage(pending)
            backoff = 0.1
            self.flushes += 1
            self.written += len(pending.records)
            if self._counters is not None:
                self._counters.logged += len(pending.records)
            self._pending = None
            for follow_up in pending.after:
                try:
                    follow_up()
                except Exception:  # one bad follow-up must not strand the rest of the batch
                    _LOGGER.exception("journal follow-up failed")
            if self._pressured and self.backlog < self._high_water // 2:
                self._pressured = False
                _LOGGER.info("journal backlog down to %d: resuming intake", self.backlog)
                if self._on_pressure:
                    self._on_pressure(False)
            if not len(self._batch):
                self._idle.set()

    def _check_pressure(self) -> None:
        if not self._pressured and self.backlog >= self._high_water:
            self._pressured = True
            _LOGGER.warning("journal backlog at %d: pausing intake", self.backlog)
            if self._on_pressure:
                self._on_pressure(True)

    async def _salvage(self, batch: Batch) -> None:
        """Write what can be written one item at a time; count and log what cannot.

        Reached only when the database refused the batch for its content (a value it
        cannot store): the follow-ups still run, so the doors get their decisions.
        """
        parts: list[tuple[str, Batch]] = (
            [("record", Batch(records=[r])) for r in batch.records]
            + [("alert", Batch(alerts=[a])) for a in batch.alerts]
            + [("alert change", Batch(alert_changes=[c])) for c in batch.alert_changes]
            + [("health", Batch(health=[h])) for h in batch.health]
            + [("device state", Batch(device_states=[d])) for d in batch.device_states]
        )
        for what, part in parts:
            try:
                await self._write(part)
            except TRANSIENT:
                raise
            except Exception as exc:
                self.dropped += 1
                if self._counters is not None:
                    self._counters.reject("journal_refused")
                _LOGGER.error("journal dropped a %s the database refused: %r", what, exc)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self._dsn)
        return self._conn

    async def _write(self, batch: Batch) -> None:
        started = time.perf_counter()
        conn = await self._connection()
        if len(batch.records) + len(batch.after) == len(batch):
            # Only log rows: one COPY is atomic by itself, so skip BEGIN and COMMIT round trips.
            await access_log.write_access_records(conn, batch.records)
        else:
            async with conn.transaction():
                await access_log.write_access_records(conn, batch.records)
                if batch.alerts:
                    await alerts.insert_alerts(conn, batch.alerts)
                for change in batch.alert_changes:
                    # An operator (or another worker) may have resolved it already.
                    with contextlib.suppress(alerts.AlertTransitionError, alerts.AlertNotFound):
                        await alerts.set_alert_status(
                            conn, change.alert_id, change.status, change.operator, change.note
                        )
                for record, changed_by in batch.health:
                    await health.set_health(conn, record, changed_by=changed_by)
                for device_id, online, ts, firmware in batch.device_states:
                    await devices.set_device_state(
                        conn, device_id, online=online, ts=ts, firmware=firmware
                    )
        _LOGGER.debug(
            "journal wrote %d items in %.1f ms", len(batch), (time.perf_counter() - started) * 1000
        )
