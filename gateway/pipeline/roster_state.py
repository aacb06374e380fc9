"""The in-memory roster snapshot, refreshed when the store says it changed.

Triggers in the store send `NOTIFY campusgate_roster, '<table>'`. A change to
health statuses reloads only the health map (small and frequent: a status set
at the API takes effect at the door well within a second); any other table
reloads the whole roster, built off the event loop and swapped in at once. A change
of response levels (issue #5) recomputes only the zones' rules: a level set at the API
takes effect at the doors within a second however large the roster. A daily check-in
(issue #15) is not a table reload at all: its notification names the person and the
campus day (`daily_checkins:<person>:<YYYY-MM-DD>`), and the index learns it as is, with
no query, so the same card is admitted at a zone that requires the check-in the moment
it is made.

Every read has a deadline, and the LISTEN connection is pinged: a connection that
hangs without an error (packets dropped) would otherwise leave the snapshot stale
for good, with no notification ever arriving. A missed deadline drops the
connection; a new listener is made and everything reloaded.

While there is no listener (the database away), changes cannot arrive: the
snapshot is as old as the last moment it was known current (`age_s()`, shown on
/readyz and as a gauge), until a new listener is up and everything reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from datetime import date

import asyncpg

from gateway.domain.health import HealthRecord
from gateway.policy.roster_index import RosterIndex
from gateway.store.db import (
    DATABASE_AWAY,
    DATABASE_ERRORS,
    DatabaseStalled,
    acquire,
    ping,
    set_keepalive,
    within,
)
from gateway.store.levels import load_levels
from gateway.store.roster import load_health, load_roster

_LOGGER = logging.getLogger(__name__)

CHANNEL = "campusgate_roster"
DEBOUNCE_S = 0.05
SAFETY_RELOAD_S = 300.0
HEALTH_TABLES = frozenset({"health_status"})
LEVEL_TABLES = frozenset({"response_levels", "response_level_state"})
CHECKIN_PREFIX = "daily_checkins:"
# Deadlines: a whole roster of 100,000 people loads in a few seconds; the rest is small.
RELOAD_DEADLINE_S = 60.0
SMALL_DEADLINE_S = 10.0
CONNECT_DEADLINE_S = 5.0
PING_EVERY_S = 5.0
PING_DEADLINE_S = 3.0


class RosterState:
    """Holds the current RosterIndex and keeps it fresh."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        on_reload: Callable[[RosterIndex], None] | None = None,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self.index = RosterIndex.build(_empty())
        self._dirty_tables: set[str] = set()
        self._checkins: list[tuple[str, date]] = []  # notified, not yet in the index
        self.checkins_applied = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._on_reload = on_reload
        self.reloads = 0
        # Wall-clock time the snapshot was last known current (a load, or a listener that
        # answered a ping), and since when it may not be (None: it is, as far as known).
        self._confirmed_at = time.time()
        self._stale_from: float | None = None

    def age_s(self, now: float | None = None) -> float:
        """How old the snapshot may be: 0 while changes reach it, else since it was current."""
        if self._stale_from is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self._stale_from)

    def _lost_touch(self) -> None:
        if self._stale_from is None:
            self._stale_from = self._confirmed_at
            _LOGGER.warning(
                "roster: changes cannot reach this gateway; deciding on the roster as of %s",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._confirmed_at)),
            )

    def _current(self) -> None:
        self._confirmed_at = time.time()

    async def start(self) -> None:
        # Listen before loading: a change committed in between is then both loaded and
        # notified (one extra reload), never missed.
        await self._listen()
        await self.reload_all()
        self._task = asyncio.create_task(self._run(), name="roster-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()

    def apply_health(self, record: HealthRecord) -> None:
        """Apply a status the gateway itself set (a fever) before the store echoes it back."""
        self.index = self.index.with_health(record)

    async def reload_all(self) -> None:
        started = time.perf_counter()
        async with acquire(self._pool, RELOAD_DEADLINE_S) as conn:
            roster = await load_roster(conn)
        self.index = await asyncio.to_thread(RosterIndex.build, roster)
        self.reloads += 1
        if self._listener is not None and not self._listener.is_closed():
            self._current()
            self._stale_from = None  # listening since before the load: nothing missed
        gc.freeze()  # the new index is long-lived; the old one goes by reference counting
        _LOGGER.info(
            "roster loaded: %d people, %d cards, %d doors in %.0f ms",
            len(roster.people),
            len(roster.cards),
            len(roster.doors),
            (time.perf_counter() - started) * 1000,
        )
        if self._on_reload:
            self._on_reload(self.index)

    async def reload_health(self) -> None:
        async with acquire(self._pool, SMALL_DEADLINE_S) as conn:
            records = await load_health(conn)
        self.index = self.index.replace_health(records)

    async def reload_levels(self) -> None:
        async with acquire(self._pool, SMALL_DEADLINE_S) as conn:
            definitions, active = await load_levels(conn)
        self.index = self.index.with_levels(definitions, active)
        _LOGGER.info("response levels reloaded: campus %s, zones %s", active.campus, active.zones)

    def apply_checkins(self) -> None:
        """Put the notified check-ins into the index (one copy for a burst of them)."""
        pending, self._checkins = self._checkins, []
        if pending:
            self.index = self.index.with_checkins(pending)
            self.checkins_applied += len(pending)

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload.startswith(CHECKIN_PREFIX):
            checkin = _parse_checkin(payload)
            if checkin is not None:
                self._checkins.append(checkin)
                self._wake.set()
            return
        self._dirty_tables.add(payload)
        self._wake.set()

    async def _listen(self) -> None:
        listener = await asyncpg.connect(self._dsn, timeout=CONNECT_DEADLINE_S)
        set_keepalive(listener)
        try:
            async with within(listener, CONNECT_DEADLINE_S):
                await listener.add_listener(CHANNEL, self._notified)
        except BaseException:
            listener.terminate()
            raise
        listener.add_termination_listener(lambda conn: self._wake.set())
        self._listener = listener

    async def _ping(self) -> None:
        """Make sure the listener still answers; drop it (DatabaseStalled) if not."""
        if self._listener is not None and not self._listener.is_closed():
            async with within(self._listener, PING_DEADLINE_S):
                await ping(self._listener)
            if self._stale_from is None:
                self._current()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            try:
                await asyncio.wait_for(listener.close(), PING_DEADLINE_S)
            except DATABASE_AWAY:
                listener.terminate()

    async def _run(self) -> None:
        last_full = time.monotonic()
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._lost_touch()
                    await self._close_listener()
                    await self._listen()
                    # Changes made while nobody listened are unknown: reload everything, now.
                    self._dirty_tables.add("*")
                    self._wake.set()
                try:
                    await asyncio.wait_for(self._wake.wait(), PING_EVERY_S)
                except TimeoutError:
                    await self._ping()
                    if time.monotonic() - last_full < SAFETY_RELOAD_S:
                        continue
                self._wake.clear()
                if self._checkins and not self._dirty_tables:
                    # No query needed: apply at once rather than after the debounce.
                    self.apply_checkins()
                    continue
                await asyncio.sleep(DEBOUNCE_S)  # let a burst of statements settle into one reload
                self.apply_checkins()
                tables, self._dirty_tables = self._dirty_tables, set()
                if not tables and time.monotonic() - last_full < SAFETY_RELOAD_S:
                    continue
                if tables and tables <= HEALTH_TABLES | LEVEL_TABLES:
                    if tables & HEALTH_TABLES:
                        await self.reload_health()
                    if tables & LEVEL_TABLES:
                        await self.reload_levels()
                else:
                    await self.reload_all()
                    last_full = time.monotonic()
            except DatabaseStalled as exc:
                _LOGGER.error(
                    "roster refresh: the database did not answer (%s); reconnecting in 1 s", exc
                )
                self._lost_touch()
                await self._close_listener()
                await asyncio.sleep(1)
            except DATABASE_ERRORS as exc:
                _LOGGER.error("roster refresh failed (%s); retrying in 2 s", exc)
                self._lost_touch()
                await self._close_listener()
                await asyncio.sleep(2)


def _parse_checkin(payload: str) -> tuple[str, date] | None:
    """(person, day) from a check-in notification; None (logged) for a malformed one."""
    person_id, _, day = payload[len(CHECKIN_PREFIX) :].rpartition(":")
    try:
        return person_id, date.fromisoformat(day)
    except ValueError:
        _LOGGER.warning("roster: ignored a malformed check-in notification %r", payload[:200])
        return None


def _empty():
    from gateway.domain.campus import CampusRoster

    return CampusRoster()
