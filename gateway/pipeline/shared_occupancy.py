"""Zone counts shared by every gateway worker through PostgreSQL (issue #14, point 2).

Zones with a capacity (under the response levels in force) or a gathering threshold are
counted in the store (gateway/store/zone_counts.py). An entry into a zone with a capacity
claims its place before it is decided: one atomic statement on a connection of its own,
with a short deadline, so that of two workers only one takes the last place. Other
passages of counted zones (exits, entries into zones with a gathering threshold only) are
sent behind the decision, in order, and never wait.

While the database is away (the connection failed or missed its deadline), each worker
decides on its own count: the shared count as last seen, moved by its own passages since.
Its passages are queued meanwhile and written once the database answers, so the shared
count includes them from then on. Over-admission during an outage is bounded by what each
worker alone lets in: with W workers and a zone at n of capacity c when the database went
away, at most n + W x (c - n) are admitted (docs/architecture.md).

One worker at a time (a session advisory lock on the same connection) is the zones'
steward: it runs the gathering watch and reconciles the counts with the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.domain.events import Direction
from gateway.domain.levels import CapacityMode
from gateway.pipeline.roster_state import RosterState
from gateway.policy.occupancy import Occupancy
from gateway.store import zone_counts
from gateway.store.db import DATABASE_AWAY, DatabaseStalled, connect, within

_LOGGER = logging.getLogger(__name__)

# A claim is one indexed UPDATE (~0.3 ms on a local database): a claim that takes longer
# than this is given up on, and the worker counts alone until the database answers again.
# Well below the journal's deadline, which the decision waits for in any case.
# A claim's whole wait, that for the connection (busy with a flush or a refresh) included.
CLAIM_DEADLINE_S = 0.5
CLAIM_STATEMENT_S = 0.25  # of which the statement keeps at least this much
CONNECT_DEADLINE_S = 2.0
REFRESH_S = 1.0  # other workers' passages reach this worker's view this often
RETRY_S = 1.0
FLUSH_BEFORE_CLAIM = 32  # more queued (an outage's backlog): the background writes them
WRITE_BATCH = 1_000  # queued passages the background writes in one go
QUEUE_BOUND = 100_000  # passages kept for the database while it is away

TRANSIENT = DATABASE_AWAY


@dataclass(frozen=True, slots=True)
class Passage:
    zone_id: str
    person_id: str
    direction: Direction
    at: datetime


class SharedOccupancy:
    """The shared counts of the counted zones, and this worker's fallback count."""

    def __init__(self, dsn: str, roster: RosterState, local: Occupancy) -> None:
        self._dsn = dsn
        self._roster = roster
        self._local = local
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._known: dict[str, int] = {}  # zone -> shared count as last seen (+ own while away)
        self._crossing: dict[str, int] = {}
        self._queue: deque[Passage] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tracked: frozenset[str] = frozenset()
        self._claims: list[
            tuple[zone_counts.ClaimRequest, asyncio.Future[zone_counts.Claim | None]]
        ] = []
        self._claiming = False
        self._senders: set[asyncio.Task[None]] = set()
        self.steward = False
        self.claims = 0
        self.refused = 0
        self.fallbacks = 0  # entries decided on the worker's own count (database away)
        self.dropped = 0  # passages the queue had no room for while away
        self.lock_timeouts = 0  # claims given up on while the connection was busy

    # ---- what the door desk asks ------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def capacity(self, zone_id: str) -> tuple[int | None, bool]:
        """The zone's capacity under the levels in force, and whether it is enforced."""
        rules = self._roster.index.zone_rules(zone_id)
        return rules.capacity, rules.capacity_mode is CapacityMode.ENFORCE

    def counted(self, zone_id: str) -> bool:
        """Whether the zone is counted in the store (a capacity or a gathering threshold)."""
        zone = self._roster.index.zone(zone_id)
        if zone is None:
            return False
        return zone.gathering_threshold is not None or self.capacity(zone_id)[0] is not None

    def count(self, zone_id: str) -> int:
        """The zone's count as this worker knows it: shared if counted, else its own."""
        known = self._known.get(zone_id)
        return self._local.count(zone_id) if known is None else known

    def crossing(self, zone_id: str) -> int | None:
        return self._crossing.get(zone_id)

    async def claim(self, zone_id: str, person_id: str, at: datetime) -> zone_counts.Claim | None:
        """Take the person's place in a zone with a capacity; None: decide on the own count.

        Claims made while a round trip is under way go together in the next one (as the
        journal's group commit): claims must take turns on the connection, and one at a
        time would cap a busy worker at one claim per turn of its event loop.
        """
        capacity, enforce = self.capacity(zone_id)
        if not self.connected:
            self.fallbacks += 1
            return None
        future: asyncio.Future[zone_counts.Claim | None] = (
            asyncio.get_running_loop().create_future()
        )
        request = zone_counts.ClaimRequest(zone_id, person_id, capacity, at, enforce)
        self._claims.append((request, future))
        if not self._claiming:
            self._claiming = True
            task = asyncio.create_task(self._send_claims(), name="zone-claims")
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        claim = await future
        if claim is None:
            self.fallbacks += 1
            return None
        self.claims += 1
        self.refused += not claim.taken
        self._known[zone_id] = claim.before + (claim.taken and not claim.held)
        self._crossing[zone_id] = claim.crossing
        return claim

    async def _send_claims(self) -> None:
        """Send the claims waiting, in one round trip each time, until none wait."""
        try:
            while self._claims:
                batch, self._claims = self._claims, []
                results = await self._claim_batch([r for r, _ in batch])
                if any(r is None for r in results) and self.connected:
                    self._wake.set()  # a zone counted since the last look: track it
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._claiming = False

    async def _claim_batch(
        self, requests: list[zone_counts.ClaimRequest]
    ) -> list[zone_counts.Claim | None]:
        """The claims' results, all within CLAIM_DEADLINE_S of now, the wait for the
        connection included (the background may hold it for a flush or a refresh); None
        for each: decide on the own count."""
        results: list[zone_counts.Claim | None] = [None] * len(requests)
        conn = self._conn
        if conn is None or conn.is_closed():
            return results
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_DEADLINE_S
        try:
            async with asyncio.timeout_at(deadline - CLAIM_STATEMENT_S):
                await self._lock.acquire()
        except TimeoutError:
            # The connection is busy, not lost: these cards alone go on the own count.
            self.lock_timeouts += 1
            return results
        try:
            if conn is not self._conn:  # dropped while this waited
                return results
            async with within(conn, deadline - loop.time()):
                # This worker's passages just before (an exit) come first, with the claims.
                at_most = FLUSH_BEFORE_CLAIM if len(self._queue) <= FLUSH_BEFORE_CLAIM else 0
                results = await self._write_queued(conn, at_most, requests)
        except (DatabaseStalled, *TRANSIENT) as exc:
            self._lost(conn, exc)
        except Exception:  # a bug: these cards are decided on the own count
            _LOGGER.exception("claiming places failed")
        finally:
            self._lock.release()
        return results

    def passed(
        self, zone_id: str, person_id: str, direction: Direction, at: datetime, *, claimed: bool
    ) -> None:
        """An admitted passage of a counted zone: written behind the decision.

        `claimed`: its place is taken already. The worker's view moves at once (without
        the database, it decides on it) and the passage is queued for the store.
        """
        if claimed or not self.counted(zone_id):
            return
        if zone_id in self._known:  # at once; the next look at the store corrects it
            step = 1 if direction is Direction.IN else -1
            self._known[zone_id] = max(self._known[zone_id] + step, 0)
        if len(self._queue) >= QUEUE_BOUND:
            self.dropped += 1  # the reconciliation with the log counts it later
            return
        self._queue.append(Passage(zone_id, person_id, direction, at))
        self._wake.set()

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared-occupancy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._senders:  # claims in flight (each within its deadline): not cut mid-statement
            await asyncio.gather(*self._senders, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), CONNECT_DEADLINE_S)
            except DATABASE_AWAY:
                conn.terminate()

    async def _run(self) -> None:
        while True:
            try:
                if not self.connected:
                    await self._connect()
                await self._write_passages()
                await self._refresh()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), REFRESH_S)
                self._wake.clear()
            except (DatabaseStalled, *TRANSIENT) as exc:
                self._lost(self._conn, exc)
                await asyncio.sleep(RETRY_S)
            except Exception:  # a bug must not end the shared counts for good
                _LOGGER.exception("shared zone counts failed; retrying")
                await asyncio.sleep(RETRY_S)

    async def _connect(self) -> None:
        conn = await connect(self._dsn, deadline_s=CONNECT_DEADLINE_S)
        try:
            async with within(conn, CONNECT_DEADLINE_S):
                await zone_counts.relax_commit(conn)
                self._tracked = frozenset()
                await self._track(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        _LOGGER.info("shared zone counts: connected")

    async def _track(self, conn: asyncpg.Connection) -> None:
        zones = frozenset(z.id for z in self._roster.index.zones() if self.counted(z.id))
        if zones != self._tracked:
            made = await zone_counts.track(conn, zones)
            if made:
                _LOGGER.info("shared zone counts: counting zones %s from now", made)
            self._tracked = zones

    async def _write_passages(self) -> None:
        """The queued passages, in order (those of an outage once the database is back)."""
        conn = self._conn
        while self._queue and conn is not None:
            async with self._lock, within(conn, CONNECT_DEADLINE_S):
                await self._write_queued(conn, WRITE_BATCH)

    def _next_passages(self, at_most: int) -> list[Passage]:
        """The oldest queued passages that can be written together: up to the first that
        repeats the zone and person of an earlier one (the order of those two matters)."""
        passages: list[Passage] = []
        seen: set[tuple[str, str]] = set()
        for passage in itertools.islice(self._queue, at_most):
            key = (passage.zone_id, passage.person_id)
            if key in seen:
                break
            seen.add(key)
            passages.append(passage)
        return passages

    async def _write_queued(
        self,
        conn: asyncpg.Connection,
        at_most: int,
        claims: list[zone_counts.ClaimRequest] | None = None,
    ) -> list[zone_counts.Claim | None]:
        """Write the oldest queued passages (exits in one statement, then entries in one
        with the `claims` after them), and make the claims; their results. The caller
        holds the lock."""
        passages = self._next_passages(at_most)
        await zone_counts.leave_many(
            conn, [(p.zone_id, p.person_id) for p in passages if p.direction is Direction.OUT]
        )
        requests = [
            zone_counts.ClaimRequest(
                p.zone_id, p.person_id, self.capacity(p.zone_id)[0], p.at, enforce=False
            )
            for p in passages
            if p.direction is Direction.IN
        ]
        entries = len(requests)
        requests += claims or []
        results = await zone_counts.claim_many(conn, requests) if requests else []
        for _ in passages:
            self._queue.popleft()
        return results[entries:]

    async def _refresh(self) -> None:
        conn = self._conn
        if conn is None:
            return
        async with self._lock, within(conn, CONNECT_DEADLINE_S):
            await self._track(conn)
            counts = await zone_counts.counts(conn)
            steward = self.steward or await zone_counts.try_steward_lock(conn)
        if steward and not self.steward:
            _LOGGER.info("shared zone counts: this worker is the zones' steward now")
        self.steward = steward
        for zone_id, (inside, crossing) in counts.items():
            self._known[zone_id] = inside
            self._crossing[zone_id] = crossing

    def _lost(self, conn: asyncpg.Connection | None, exc: BaseException) -> None:
        if conn is not None and conn is self._conn:
            self._conn = None
            conn.terminate()
            _LOGGER.error(
                "shared zone counts: the database did not answer (%s); deciding on this "
                "worker's own counts until it does",
                type(exc).__name__,
            )
        self.steward = False  # the lock went with the session
