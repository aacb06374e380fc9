"""The write-ahead journal: decisions become durable before they are sent.

Everything a decision changes (the access record, alerts it raises, a health
status it sets, a device's online state) goes into the current batch; one
flush writes the batch in one transaction (COPY for the access log) and only
then runs the batch's `after` callbacks, which publish the decisions and
acknowledge the MQTT messages. A gateway killed between the two has its
events redelivered by the broker, finds them in the log, and answers with the
decision it recorded: no event lost, none decided twice. Flushes run back to
back, so a batch is as large as the traffic of one flush (group commit).

Every call to the database has a deadline. A connection that misses it may never
answer (packets dropped, a peer gone without a word): it is dropped, its server
process ended, and the batch written again on a fresh connection, after checking
that the first try did not commit (the log has no unique key to lean on). A
stall is logged once and reported through `on_stall` (the gateway raises a
`database_stall` alert), and again once the database answers.

With a spool (gateway/pipeline/spool.py), a write that fails for want of a
database is not retried while the doors wait: the batch goes to the local spool,
durable on disk, and is followed up at once; so do the batches after it, until a
drain has written every spooled batch into PostgreSQL in order.

Whether the database is there is asked apart from how long a write may take: a
write (with a spool) unanswered after `SUSPECT_S` makes the journal ping the
database on a connection of its own (`PROBE_S`). A database that answers the ping
is slow, not away: the write goes on, up to its deadline. One that does not is
away: the write is abandoned, its batch spooled in doubt (it may have committed;
the drain ends its server process and looks before writing it), and the doors are
answered from the spool well within a second instead of after the write deadline.

A follow-up added with `Batch.follow(..., needs=...)` runs only if everything it
needs was written: a decision is never published whose log row was refused.

A partitioned worker's journal has a `fence` (gateway/pipeline/lease_fence.py): each
write checks, in its transaction, that the partitions of its rows are still this
worker's, and leaves out those that are not (`fenced`): their follow-ups run neither
way (no decision sent, no acknowledgement), since the new owner decides those events.
The spool's drain is not fenced: what it writes was sent already.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from gateway.domain.alerts import Alert, AlertStatus
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Verdict
from gateway.domain.events import EventType
from gateway.domain.health import HealthRecord
from gateway.metrics import Counters
from gateway.pipeline.lease_fence import LeaseFence
from gateway.pipeline.spool import Spool, decode, doubt
from gateway.store import access_log, alerts, devices, health, spool_drains
from gateway.store.db import (
    DATABASE_AWAY,
    DatabaseStalled,
    backend_identity,
    connect,
    end_backend,
    ping,
    within,
)

_LOGGER = logging.getLogger(__name__)

# A flush of an ordinary batch takes milliseconds; a large one (the backlog after an
# outage) more, so its deadline grows with its size. Each deadline missed in a row
# doubles the next (up to 8x), so a slow but living database is not given up on forever.
DEADLINE_S = 2.0
DEADLINE_PER_ITEM_S = 0.0002  # 50,000 items: +10 s
CONNECT_DEADLINE_S = 3.0
# With a spool: a write unanswered this long makes the journal ask whether the database
# is there at all, by a ping on its own connection that must answer within PROBE_S.
# Both short, so that doors wait well under a second for a database that is gone; a
# database merely slow under load answers a ping at once and keeps its write deadline.
SUSPECT_S = 0.3
PROBE_S = 0.3
# Retrying: the database is probed again this often while it is away, so doors resume
# within about this long of its return.
BACKOFF_START_S = 0.05
BACKOFF_CAP_S = 0.5
# Items per drain transaction of the spool: large enough to catch up fast, small enough
# to keep each transaction within a short deadline.
DRAIN_ITEMS = 5_000
APPEND_WAIT_S = 0.01  # the drain's look again while an append to the spool is under way

TRANSIENT = DATABASE_AWAY  # the database is not there right now (not: it refused this)


class DatabaseAway(DatabaseStalled):
    """A write went unanswered and the database did not answer a ping either."""


@dataclass(frozen=True, slots=True)
class AlertChange:
    alert_id: str
    status: AlertStatus
    operator: str
    note: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A follow-up that needs items of its batch written: otherwise `refused` runs instead,
    or `fenced` if one was left out because its partition is another worker's now."""

    run: Callable[[], None]
    needs: tuple[object, ...]
    refused: Callable[[], None] | None = None
    fenced: Callable[[], None] | None = None

    def __call__(self) -> None:
        self.run()


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

    def follow(
        self,
        run: Callable[[], None],
        *,
        needs: tuple[object, ...] = (),
        refused: Callable[[], None] | None = None,
        fenced: Callable[[], None] | None = None,
    ) -> None:
        """Run `run` once the batch is committed, if every item in `needs` (records, alerts
        of this batch) was written; if one was refused, run `refused` (if given) instead;
        if one was fenced off (its partition lost), `fenced` (if given)."""
        self.after.append(FollowUp(run, needs, refused, fenced) if needs else run)

    def parts(self) -> list[tuple[str, Batch, object]]:
        """The batch one item at a time: (what, a batch of that item alone, the item)."""
        return (
            [("record", Batch(records=[r]), r) for r in self.records]
            + [("alert", Batch(alerts=[a]), a) for a in self.alerts]
            + [("alert change", Batch(alert_changes=[c]), c) for c in self.alert_changes]
            + [("health", Batch(health=[h]), h) for h in self.health]
            + [("device state", Batch(device_states=[d]), d) for d in self.device_states]
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
        on_stall: Callable[[bool, str], None] | None = None,
        counters: Counters | None = None,
        deadline_s: float = DEADLINE_S,
        spool: Spool | None = None,
        suspect_s: float = SUSPECT_S,
        probe_s: float = PROBE_S,
    ) -> None:
        self._counters = counters
        self.spool = spool
        # Batches go to the spool (the database failed, or the spool still holds rows)
        # until the drain has emptied it.
        self.spooling = False
        self._drainer: asyncio.Task[None] | None = None
        self._drain_backend: tuple[int, object] | None = None  # a drain write left unanswered
        # A connection of its own: a pool's acquire/release costs a reset round trip per flush.
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._backend: tuple[int, object] | None = None  # the server process behind _conn
        self._batch = Batch()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._high_water = high_water
        self._on_pressure = on_pressure
        self.on_stall = on_stall
        self._pressured = False
        self._task: asyncio.Task[None] | None = None
        self._pending: Batch | None = None
        self._deadline_s = deadline_s
        self._suspect_s = suspect_s
        self._probe_s = probe_s
        self._probe: asyncpg.Connection | None = None  # the ping's own connection
        self._probe_opening: asyncio.Task[None] | None = None
        self.probes = 0  # pings sent because a write was slow
        self.away = 0  # of them unanswered: the write abandoned, its batch spooled
        # Each switch to the spool (the last 100): when (monotonic) and how long the oldest
        # item of the batch whose write failed waited until durable in the spool (about
        # what its door waited).
        self.switches: collections.deque[tuple[float, float]] = collections.deque(maxlen=100)
        self._switch_from: float | None = None
        self._misses = 0  # deadlines missed in a row
        # The write of this batch (or salvage part) failed midway: it may have committed.
        self._unsure: Batch | None = None
        self._unsure_backend: tuple[int, object] | None = None
        self._parts: list[tuple[str, Batch, object]] | None = None  # salvage still to do
        self._refused: set[int] = set()  # id() of the pending batch's refused items
        self._fenced: set[int] = set()  # id() of its items fenced off (partition lost)
        # A partitioned worker's lease check on each write (`PartitionOwnership` sets it).
        self.fence: LeaseFence | None = None
        self._fence_ready: asyncpg.Connection | None = None  # the connection prepared for it
        self._stalled_since: float | None = None
        # When the open batch and the one being written got their first item (monotonic):
        # the oldest is the write lag that /metrics shows.
        self._batch_since: float | None = None
        self._pending_since: float | None = None
        self.flushes = 0
        self.written = 0
        self.failures = 0
        self.dropped = 0
        self.fenced = 0  # log rows left out: their partition's lease was another worker's
        self.stalls = 0
        self.alerts_deduplicated = 0

    @property
    def backlog(self) -> int:
        """Items not yet written: the open batch and one being retried."""
        return len(self._batch) + (len(self._pending) if self._pending is not None else 0)

    def write_lag(self, now: float | None = None) -> float:
        """Seconds the oldest item not yet written has waited (0 when nothing waits)."""
        since = self._pending_since if self._pending_since is not None else self._batch_since
        if since is None or not self.backlog:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - since)

    def current(self) -> Batch:
        """The open batch; add to it, then call `kick()`."""
        return self._batch

    def kick(self) -> None:
        if self._batch_since is None:
            self._batch_since = time.monotonic()
        self._idle.clear()
        self._wake.set()
        self._check_pressure()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal")
        if self.spool is not None and not self.spool.empty:
            # Left by an outage (or a crash) before: newer batches queue behind it.
            _LOGGER.warning(
                "journal spool holds %d items from before: draining them first", self.spool.items
            )
            self._enter_spool()

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
        for task in (self._task, self._drainer, self._probe_opening):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for conn in (self._conn, self._probe):
            if conn is not None and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), CONNECT_DEADLINE_S)
                except DATABASE_AWAY:
                    conn.terminate()

    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        self._pending = None
        while True:
            if self._pending is None:
                await self._wake.wait()
                self._wake.clear()
                self._pending, self._batch = self._batch, Batch()
                self._pending_since, self._batch_since = self._batch_since, None
                self._refused = set()
                self._fenced = set()
            # A batch being retried is not merged with newer items: if its first try
            # committed after all, exactly it is known to be written.
            pending = self._pending
            if not len(pending):
                self._pending = self._pending_since = None
                self._idle.set()
                continue
            if self.spooling:
                try:
                    spooled = await self._to_spool(pending)
                except Exception:  # the disk (full, failing): wait, as without a spool
                    _LOGGER.exception("journal spool write failed; retrying")
                    spooled = False
                if not spooled:
                    # The spool is full: wait for the drain (doors wait, as without one).
                    self._check_pressure()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_CAP_S)
                    continue
                backoff = BACKOFF_START_S
                if self._switch_from is not None:
                    now = time.monotonic()
                    self.switches.append((now, now - self._switch_from))
                    self._switch_from = None
                self._finish(pending, logged=False)
                continue
            try:
                await self._commit_watched(pending)
            except TRANSIENT as exc:
                # The database is away or hung: keep the batch (its messages stay
                # unacknowledged) and try again; intake pauses at the high-water mark.
                self.failures += 1
                self._stalled(pending, exc, backoff)
                if self.spool is not None:
                    # Or, with a spool, make it durable there and go on without the database.
                    self._switch_from = self._pending_since
                    self._enter_spool()
                    continue
                self._check_pressure()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP_S)
                continue
            backoff = BACKOFF_START_S
            self._recovered()
            self._finish(pending, logged=True)

    def _finish(self, pending: Batch, *, logged: bool) -> None:
        """The batch is durable (in the store, or `logged=False`: in the spool): follow it up."""
        refused, fenced = self._refused, self._fenced
        if logged:
            self.flushes += 1
            written = sum(1 for r in pending.records if id(r) not in refused)
            self.written += written
            if self._counters is not None:
                self._counters.logged += written
        self._pending = self._pending_since = None
        self._parts = None
        self._refused = set()
        self._fenced = set()
        for follow_up in pending.after:
            self._follow(follow_up, refused, fenced)
        if self._pressured and self.backlog < self._high_water // 2:
            self._pressured = False
            _LOGGER.info("journal backlog down to %d: resuming intake", self.backlog)
            if self._on_pressure:
                self._on_pressure(False)
        if not len(self._batch):
            self._idle.set()

    # ---- the spool (gateway/pipeline/spool.py) ---------------------------------

    def _enter_spool(self) -> None:
        self.spooling = True
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain_spool(), name="journal-spool-drain")

    async def _to_spool(self, batch: Batch) -> bool:
        """Make `batch` (what of it is not written yet) durable in the spool; False if full.

        A write of it (or of its first part still to salvage) that got no answer may have
        committed: the spool row carries that doubt, and the drain looks before writing it.
        """
        assert self.spool is not None
        parts = [part for _, part, _ in self._parts] if self._parts is not None else [batch]
        parts = [part for part in parts if len(part) > len(part.after)]
        unsure = None
        if parts and self._unsure is parts[0]:
            unsure = ("unsure", self._unsure_backend)
        if parts:
            items = sum(len(part) - len(part.after) for part in parts)
            if not self.spool.has_room(items):
                return False
            await self.spool.append([_items(part) for part in parts], items, unsure)
        self._unsure = None
        return True

    async def _drain_spool(self) -> None:
        """Write the spooled batches into the store in order, then leave spooling."""
        assert self.spool is not None
        backoff = BACKOFF_START_S
        while True:
            try:
                if await self._drain_some(self.spool):
                    return
                backoff = BACKOFF_START_S
            except TRANSIENT as exc:
                _LOGGER.debug("spool drain: database still away (%s)", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP_S)
            except Exception:  # a bug must not end the drain for good
                _LOGGER.exception("spool drain failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def _drain_some(self, spool: Spool) -> bool:
        """Drain one chunk; True once the spool is empty and batches go to the store again."""
        if spool.empty:
            # No await between this look and the switch: no batch can slip in between.
            self.spooling = False
            self._drainer = None
            self._recovered()
            self._wake.set()
            return True
        await self._drain_chunk(spool)
        return False

    async def drain_left(self, spool: Spool) -> None:
        """Drain, before `start`, a spool a worker of another id left behind (say, one
        recreated under another hostname): in order, exactly once (its own drain mark)."""
        while not spool.empty:
            await self._drain_chunk(spool)

    async def _drain_chunk(self, spool: Spool) -> None:
        """Write the oldest spooled rows into the store, then forget them."""
        conn = await self._connection()
        async with within(conn, self._deadline_s * 2):
            if self._drain_backend is not None and self._drain_backend != self._backend:
                # A drain write given up on: end it, so that it cannot commit after this look.
                await end_backend(conn, self._drain_backend, wait_s=self._deadline_s)
            self._drain_backend = None
            mark = await spool_drains.drained_through(conn, spool.id)
        rows = await spool.oldest(DRAIN_ITEMS)
        if not rows:
            # Not empty yet nothing on file: an append is under way. Let it land, look again.
            await asyncio.sleep(APPEND_WAIT_S)
            return
        fresh = [row for row in rows if row.seq > mark]
        if fresh:
            # A row in doubt is looked at alone; the rows before it go first.
            cut = next((k for k, row in enumerate(fresh) if k and doubt(row) is not None), None)
            fresh = fresh[:cut]
            await self._drain_rows(conn, spool, fresh)
            rows = [row for row in rows if row.seq <= fresh[-1].seq]
        # Rows at or below the mark are in the store already (a crash after the commit).
        await spool.remove_through(rows[-1].seq, sum(row.items for row in rows))

    async def _drain_rows(self, conn: asyncpg.Connection, spool: Spool, rows: list) -> None:  # type: ignore[type-arg]
        parts = [_batch(items) for row in rows for items in decode(row)]
        doubted = doubt(rows[0])
        if doubted is not None and parts:
            _, backend = doubted  # type: ignore[misc]
            async with within(conn, self._deadline_s * 2):
                if backend is not None and backend != self._backend:
                    await end_backend(conn, backend, wait_s=self._deadline_s)
                if await _landed(conn, parts[0]):
                    _LOGGER.info("spool drain: a batch given up on had committed; skipping it")
                    parts = parts[1:]
        merged = Batch()
        for part in parts:
            merged.absorb(part)
        seq = rows[-1].seq
        deadline = (self._deadline_s + len(merged) * DEADLINE_PER_ITEM_S) * 2
        self._drain_backend = self._backend
        lost = 0
        try:
            try:
                async with within(conn, deadline), conn.transaction():
                    await _skip_decided_elsewhere(conn, merged)
                    await self._write(conn, merged)
                    await spool_drains.mark_drained(conn, spool.id, seq)
            except TRANSIENT:
                raise
            except Exception as exc:
                _LOGGER.error(
                    "spool drain of %d items refused (%r); salvaging item by item", len(merged), exc
                )
                async with within(conn, deadline), conn.transaction():
                    lost = await self._salvage(conn, merged)
                    await spool_drains.mark_drained(conn, spool.id, seq)
        except DatabaseStalled:
            self._conn = None
            raise
        except TRANSIENT:
            if conn.is_closed():
                self._conn = None
            raise
        self._drain_backend = None
        written = len(merged.records) - lost
        spool.drained_records += written
        self.written += written
        if self._counters is not None:
            self._counters.logged += written

    async def _salvage(self, conn: asyncpg.Connection, batch: Batch) -> int:
        """Write what the store takes of `batch`, each item under a savepoint of its own.

        The decisions went out when the items were spooled: a refused item is dropped
        and counted, like one refused on the direct path. Returns the log rows dropped.
        """
        lost = 0
        for what, part, item in batch.parts():
            try:
                async with conn.transaction():
                    await self._write(conn, part)
            except TRANSIENT:
                raise
            except Exception as exc:
                self.dropped += 1
                lost += isinstance(item, AccessRecord)
                if self._counters is not None:
                    self._counters.reject("journal_refused")
                _LOGGER.error(
                    "spool drain dropped a %s the database refused%s: %r", what, _which(item), exc
                )
        return lost

    @staticmethod
    def _follow(
        follow_up: Callable[[], None], refused: set[int], fenced: AbstractSet[int] = frozenset()
    ) -> None:
        try:
            if isinstance(follow_up, FollowUp) and any(id(n) in fenced for n in follow_up.needs):
                if follow_up.fenced is not None:
                    follow_up.fenced()
                return
            if isinstance(follow_up, FollowUp) and any(id(n) in refused for n in follow_up.needs):
                if follow_up.refused is not None:
                    follow_up.refused()
                return
            follow_up()
        except Exception:  # one bad follow-up must not strand the rest of the batch
            _LOGGER.exception("journal follow-up failed")

    def _stalled(self, pending: Batch, exc: BaseException, backoff: float) -> None:
        if self._stalled_since is not None:
            _LOGGER.debug("journal write still failing (%s); retrying in %.2f s", exc, backoff)
            return
        self._stalled_since = time.monotonic()
        self.stalls += 1
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        _LOGGER.error(
            "database stalled: journal write of %d items failed (%s); %s, retrying every "
            "%.1f s at most",
            len(pending),
            detail,
            "doors wait for their decisions until it answers"
            if self.spool is None
            else "decisions are journaled to the local spool until it answers",
            BACKOFF_CAP_S,
        )
        self._report_stall(True, detail)

    def _recovered(self) -> None:
        if self._stalled_since is None:
            return
        lasted = time.monotonic() - self._stalled_since
        self._stalled_since = None
        _LOGGER.warning("database answers again: journal writes resumed after %.1f s", lasted)
        self._report_stall(False, f"writes resumed after {lasted:.1f} s")

    def _report_stall(self, stalled: bool, detail: str) -> None:
        if self.on_stall is None:
            return
        try:
            self.on_stall(stalled, detail)
        except Exception:
            _LOGGER.exception("reporting a database stall failed")

    def _check_pressure(self) -> None:
        if not self._pressured and self.backlog >= self._high_water:
            self._pressured = True
            _LOGGER.warning("journal backlog at %d: pausing intake", self.backlog)
            if self._on_pressure:
                self._on_pressure(True)

    async def _commit_watched(self, batch: Batch) -> None:
        """`_commit`, and with a spool, watched: a write unanswered for `SUSPECT_S` while
        the database does not answer a ping either is abandoned (DatabaseAway), in doubt."""
        if self.spool is None:
            await self._commit(batch)
            return
        write = asyncio.ensure_future(self._commit(batch))
        loop = asyncio.get_running_loop()
        try:
            while True:
                began = loop.time()
                done, _ = await asyncio.wait({write}, timeout=self._suspect_s)
                if done:
                    write.result()
                    self._open_probe()
                    return
                # A loop running late (a starved CPU) would fail a ping whose reply is
                # in: the ping gets what the wait ran over on top of its own deadline.
                lag = max(0.0, loop.time() - began - self._suspect_s)
                self.probes += 1
                if not await self._database_answers(self._probe_s + lag):
                    if write.done():
                        continue  # it answered during the ping: its outcome stands
                    self.away += 1
                    raise DatabaseAway(
                        f"a write unanswered after {self._suspect_s:g} s and no answer to a "
                        f"ping within {self._probe_s:g} s"
                    )
        finally:
            if not write.done():
                # Abandoned mid-write (it may commit yet): `_write_once` keeps it in doubt.
                write.cancel()
                await asyncio.wait({write})  # its end, not its outcome: in doubt either way
                if not write.cancelled():
                    write.exception()  # retrieved: it ended as abandoned
                if self._conn is not None:  # cancelled before or after its write: suspect
                    self._conn.terminate()
                    self._conn = None

    def _open_probe(self) -> None:
        """Open the ping's connection in the background (after a write went through):
        a ping is then one round trip, not a connection set up against the clock."""
        if self._probe is not None and not self._probe.is_closed():
            return
        if self._probe_opening is None or self._probe_opening.done():
            self._probe_opening = asyncio.create_task(self._connect_probe(), name="journal-probe")

    async def _connect_probe(self) -> None:
        try:
            self._probe = await connect(self._dsn, deadline_s=CONNECT_DEADLINE_S)
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            _LOGGER.debug("journal: no ping connection yet (%r)", exc)

    async def _database_answers(self, deadline_s: float) -> bool:
        """Whether the database answers a ping within `deadline_s` on the probe's connection.

        Without one (none opened yet, or dropped by the last unanswered ping) nothing can
        be told this fast: the write keeps its own deadline.
        """
        probe = self._probe
        if probe is None or probe.is_closed():
            self._probe = None
            self._open_probe()
            return True
        try:
            async with asyncio.timeout(deadline_s):
                await ping(probe)
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            _LOGGER.warning("database did not answer a ping within %.1f s (%r)", deadline_s, exc)
            probe.terminate()
            self._probe = None
            return False
        return True

    async def _commit(self, batch: Batch) -> None:
        """Write the batch whole or, once the database refused it whole, item by item.

        Salvage resumes where it stopped if the database goes away in the middle, so no
        item is written twice. Refused items are noted in `_refused`.
        """
        if self._parts is None:
            try:
                await self._write_once(batch)
                return
            except TRANSIENT:
                raise
            except Exception as exc:
                self.failures += 1
                _LOGGER.error(
                    "journal write of %d items refused (%r); salvaging item by item",
                    len(batch),
                    exc,
                )
                self._parts = batch.parts()
        while self._parts:
            what, part, item = self._parts[0]
            try:
                await self._write_once(part)
            except TRANSIENT:
                raise
            except Exception as exc:
                self.dropped += 1
                self._refused.add(id(item))
                if self._counters is not None:
                    self._counters.reject("journal_refused")
                _LOGGER.error(
                    "journal dropped a %s the database refused%s: %r",
                    what,
                    _which(item),
                    exc,
                )
            self._parts.pop(0)

    async def _write_once(self, batch: Batch) -> None:
        """Write `batch` exactly once: if an earlier try's outcome is unknown, look first."""
        conn = await self._connection()
        if self._unsure is batch:
            if await self._already_written(conn, batch):
                _LOGGER.info("journal: the write given up on had committed; not writing again")
                self._unsure = None
                return
            self._unsure = None
        if self.fence is not None and conn is not self._fence_ready:
            async with within(conn, CONNECT_DEADLINE_S):
                await self.fence.prepare(conn)
            self._fence_ready = conn
        deadline = (self._deadline_s + len(batch) * DEADLINE_PER_ITEM_S) * 2 ** min(self._misses, 3)
        self._unsure, self._unsure_backend = batch, self._backend
        try:
            async with within(conn, deadline):
                skipped = await self._write(conn, batch, fence=self.fence)
        except DatabaseStalled:
            self._misses += 1
            self._conn = None
            _LOGGER.warning(
                "journal write of %d items got no answer within %.1f s: connection dropped",
                len(batch),
                deadline,
            )
            raise
        except TRANSIENT:
            if conn.is_closed():
                self._conn = None
            raise
        except asyncio.CancelledError:
            # Abandoned (`_commit_watched`) or stopped without a reply: it may commit yet.
            # The connection goes; the batch stays in doubt with its server process.
            conn.terminate()
            self._conn = None
            raise
        except BaseException:
            # Refused (rolled back): nothing was written.
            self._unsure = None
            raise
        self._unsure = None
        self._misses = 0
        self._skip_alerts(skipped)

    def _skip_alerts(self, skipped: list[Alert]) -> None:
        """Alerts the store did not take since one of the same kind and subject is open
        (another worker raised it; migration 0022): their publication is not run."""
        for alert in skipped:
            self._refused.add(id(alert))
            self.alerts_deduplicated += 1
            if self._counters is not None:
                self._counters.alerts_deduplicated += 1
            _LOGGER.info("alert %s not stored: one of its kind and subject is open", alert.kind)

    def _fence_off(self, batch: Batch, fenced: list[object]) -> None:
        """Leave out of `batch` the items of partitions lost to another worker; say so once."""
        if not fenced:
            return
        gone = {id(item) for item in fenced}
        self._fenced |= gone
        rows = sum(1 for r in batch.records if id(r) in gone)
        batch.records = [r for r in batch.records if id(r) not in gone]
        batch.alerts = [a for a in batch.alerts if id(a) not in gone]
        batch.device_states = [d for d in batch.device_states if id(d) not in gone]
        self.fenced += rows
        if self._counters is not None:
            self._counters.fenced += rows
        _LOGGER.warning(
            "journal: %d log rows and %d other items left out: their partitions' leases are "
            "another worker's now, which decides those events again (not acknowledged here)",
            rows,
            len(fenced) - rows,
        )

    async def _already_written(self, conn: asyncpg.Connection, batch: Batch) -> bool:
        """Whether the earlier, unanswered write of `batch` committed.

        The server process of that write is ended first, so that it cannot commit after
        the look. A batch commits whole, so one of its items tells (`_landed`).
        """
        async with within(conn, self._deadline_s * 2):
            if self._unsure_backend is not None:
                await end_backend(conn, self._unsure_backend, wait_s=self._deadline_s)
            return await _landed(conn, batch)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            conn = await connect(self._dsn, deadline_s=CONNECT_DEADLINE_S)
            try:
                async with within(conn, CONNECT_DEADLINE_S):
                    self._backend = await backend_identity(conn)
            except BaseException:
                conn.terminate()
                raise
            self._conn = conn
        return self._conn

    async def _write(
        self, conn: asyncpg.Connection, batch: Batch, *, fence: LeaseFence | None = None
    ) -> list[Alert]:
        """Write `batch` in one transaction; returns its alerts not stored (open already).

        With a `fence`, the items of partitions whose lease is not this worker's any more
        are left out of `batch` (for good: a retry must look at what was written) and
        noted in `_fenced`; the lease rows of the others stay locked until the commit."""
        skipped: list[Alert] = []
        started = time.perf_counter()
        if fence is None and len(batch.records) + len(batch.after) == len(batch):
            # Only log rows: one COPY is atomic by itself, so skip BEGIN and COMMIT round trips.
            await access_log.write_access_records(conn, batch.records)
        else:
            async with conn.transaction():
                if fence is not None:
                    self._fence_off(batch, await fence.fenced(conn, _placed(batch)))
                await access_log.write_access_records(conn, batch.records)
                if batch.alerts:
                    skipped = await alerts.insert_alerts(conn, batch.alerts)
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
        return skipped


def _placed(batch: Batch) -> list[tuple[object, str | None, str | None]]:
    """The items of `batch` that belong to a door or device: (item, device id, door id)."""
    placed: list[tuple[object, str | None, str | None]] = [
        (r, r.device_id, r.door_id) for r in batch.records
    ]
    placed += [(a, a.device, a.door) for a in batch.alerts if a.device or a.door]
    placed += [(d, d[0], None) for d in batch.device_states]
    return placed


async def _landed(conn: asyncpg.Connection, batch: Batch) -> bool:
    """Whether `batch`, written whole or not at all, is in the store: one item tells.

    Its first log row, else its first alert (ids are unique), else its first health
    change. A batch of only alert changes and device states is written again: a change
    applied twice is refused by the alert lifecycle, and device states are upserts.
    """
    if batch.records:
        return await access_log.is_logged(conn, batch.records[0])
    if batch.alerts:
        return await alerts.is_stored(conn, batch.alerts[0].id)
    if batch.health:
        record, changed_by = batch.health[0]
        return await health.is_recorded(conn, record, changed_by=changed_by)
    return False


def _items(batch: Batch) -> tuple[list[object], ...]:
    """What of `batch` is stored (its follow-ups are not)."""
    return (batch.records, batch.alerts, batch.alert_changes, batch.health, batch.device_states)  # type: ignore[return-value]


def _batch(items: tuple[list[object], ...]) -> Batch:
    records, alerts_, changes, health_, states = items
    return Batch(records, alerts_, changes, health_, states)  # type: ignore[arg-type]


def _which(item: object) -> str:
    if isinstance(item, AccessRecord):
        return f" (device {item.device_id!r}, event {item.event_id!r})"
    if isinstance(item, Alert):
        return f" (alert {item.kind.value} {item.id})"
    return ""


async def _skip_decided_elsewhere(conn: asyncpg.Connection, batch: Batch) -> None:
    """Leave out spooled card decisions another worker logged meanwhile (issue 14).

    A worker cut off from PostgreSQL spools its decisions and acknowledges their events;
    if its partition was taken over before an acknowledgement reached the broker, the new
    owner got the event again and decided and logged it. Its row stands; ours would be a
    second one."""
    finals = [
        (r.device_id, r.event_id)
        for r in batch.records
        if r.type is EventType.CARD and r.verdict in (Verdict.ADMIT, Verdict.DENY)
    ]
    taken = await access_log.decided_cards(conn, finals)
    if not taken:
        return
    _LOGGER.warning(
        "spool drain: %d card decisions were logged by another worker meanwhile (their "
        "partition changed hands before the acknowledgement); keeping theirs",
        len(taken),
    )
    batch.records = [
        r
        for r in batch.records
        if not (
            r.type is EventType.CARD
            and r.verdict in (Verdict.ADMIT, Verdict.DENY)
            and (r.device_id, r.event_id) in taken
        )
    ]
