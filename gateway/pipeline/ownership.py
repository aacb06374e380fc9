"""Which partitions this worker owns: leases in PostgreSQL, balanced among live workers.

Every `tick_s` the worker renews its registration and its leases (one short transaction),
drops the partitions whose lease another worker holds now, releases those over its fair
share (ceil(partitions / live workers)), and takes free or expired ones up to it. A lease
lives `lease_s` past its last renewal, on the database's clock.

Why lease rows and not session advisory locks (docs/architecture.md): an advisory lock
dies with its connection, which is right for a SIGKILL but wrong twice over: a host that
vanishes without closing TCP keeps its locks until the server's TCP keepalive gives up
(hours by default), and a full PostgreSQL outage would free every lock at once, so every
worker would have to drop its doors, while issue 13 says the database down must not be
the doors down. With rows, a worker that cannot reach the database keeps serving what it
holds; nobody else can take it before the database is back and the lease has expired, and
when someone does, the broker's session takeover (MQTT 5 reason 0x8E) tells the old
owner, which stops that session and never reconnects it. Until it has noticed, its
journal writes are fenced by the lease (gateway/pipeline/lease_fence.py): nothing of a
partition no longer its own is logged or answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.domain.partitions import device_partition, partition_of, rebalance
from gateway.pipeline.dedupe import SeenEvents
from gateway.pipeline.device_watch import DeviceWatch
from gateway.pipeline.journal import Journal
from gateway.pipeline.lease_fence import LeaseFence
from gateway.pipeline.partition_sessions import PartitionedMqtt
from gateway.pipeline.recent_decisions import remember_decisions
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.topics import Topics
from gateway.store import access_log
from gateway.store import partition_leases as leases
from gateway.store.db import DATABASE_ERRORS, acquire

_LOGGER = logging.getLogger(__name__)

DEDUPE_HORIZON = timedelta(hours=24)
DEADLINE_S = 5.0
RETIRE_AFTER_S = 60.0  # a worker expired this long is forgotten and its presence cleared
# After a failed tick (the database away), leases this many long pass before balancing again:
# every live worker's registration and leases lapsed meanwhile, and a loaded one may need a
# connect deadline and a tick to renew them; balancing earlier would take its partitions.
QUIET_LEASES = 2


class PartitionOwnership:
    """Takes, keeps, balances and gives back this worker's partitions."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        worker: str,
        partitions: int,
        lease_s: float,
        mqtt: PartitionedMqtt,
        topics: Topics,
        roster: RosterState,
        seen: SeenEvents,
        journal: Journal,
        devices: DeviceWatch,
        forget_devices: Callable[[set[str]], int],
        finish_claims: Callable[[set[str]], Awaitable[None]] | None = None,
        tick_s: float | None = None,
    ) -> None:
        self._pool = pool
        self.worker = worker
        self.partitions = partitions
        self.lease_s = lease_s
        self.tick_s = tick_s if tick_s is not None else max(0.2, lease_s / 5)
        self._mqtt = mqtt
        self._topics = topics
        self._roster = roster
        self._seen = seen
        self._journal = journal
        self._devices = devices
        self._forget_devices = forget_devices
        # Wait for the cards of these devices whose zone place is being claimed to be
        # decided (each within the claim's deadline), so that they are logged and answered
        # before the partition goes: the new owner would decide them a second time.
        self._finish_claims = finish_claims
        self.instance = uuid.uuid4()
        self._start = partition_of(worker, partitions)
        self._renewed_at: float | None = None
        # After the database was away, every lease looks expired until its holder renews:
        # take none for a lease's time, so live workers keep theirs (see `tick`).
        self._database_lost = False
        self._quiet_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self.live_workers = 0
        self.takeovers = 0  # partitions taken (counted once each)
        self.losses = 0  # partitions lost to another worker
        mqtt.on_taken_over = self._taken_over
        mqtt.lease_fresh = self.lease_fresh
        # Each journal write checks that its partitions' leases are still ours (fencing).
        journal.fence = LeaseFence(worker, partitions, lease_s, self.partition_of_device)

    # ---- what other parts ask ----------------------------------------------------

    @property
    def owned(self) -> list[int]:
        return self._mqtt.owned

    def partition_of_device(self, device_id: str) -> int | None:
        device = self._roster.index.device(device_id)
        if device is None:
            return None
        return device_partition(device.door_id, device.id, self.partitions)

    def lease_fresh(self) -> bool:
        """Whether nobody else can hold this worker's leases: renewed less than a lease ago,
        counted from before the renewal was sent (the database's now() that started the
        lease is later than that, however late the answer came), less a tick to spare."""
        renewed = self._renewed_at
        return renewed is not None and time.monotonic() - renewed < self.lease_s - self.tick_s

    def devices_by_partition(self) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for device in self._roster.index.devices():
            n = device_partition(device.door_id, device.id, self.partitions)
            found.setdefault(n, set()).add(device.id)
        return found

    # ---- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Check the campus's partition count, register, take a first share; then balance."""
        async with acquire(self._pool, DEADLINE_S) as conn:
            await leases.record_partitions(conn, self.partitions)
        await self._register_when_free()
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name="partition-ownership")

    async def _register_when_free(self) -> None:
        # A worker restarted with the same id right after a crash finds its old row alive
        # for up to one lease: wait it out rather than refuse.
        deadline = time.monotonic() + 2 * self.lease_s + 1
        while True:
            try:
                async with acquire(self._pool, DEADLINE_S) as conn:
                    await leases.register_worker(
                        conn,
                        self.worker,
                        self.instance,
                        socket.gethostname(),
                        os.getpid(),
                        self.lease_s,
                    )
                return
            except leases.WorkerIdInUse:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(self.tick_s)

    async def stop(self) -> None:
        """Stop balancing (the sessions are closed by the caller, then `release_all`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def release_all(self) -> None:
        """Clean stop: give every lease back at once, so others take over without waiting."""
        try:
            async with acquire(self._pool, DEADLINE_S) as conn:
                await leases.deregister_worker(conn, self.worker, self.instance)
        except DATABASE_ERRORS as exc:
            _LOGGER.warning(
                "could not release the partition leases (%s): others take them when they expire",
                exc,
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except DATABASE_ERRORS as exc:
                # The database away: keep every partition (the doors keep deciding); nobody
                # can take them before it is back and our leases have expired.
                self._database_lost = True
                _LOGGER.warning(
                    "partition leases not renewed (%s): keeping partitions %s", exc, self.owned
                )
            except Exception:
                # Whatever failed, the next good tick may find others' renewals late too.
                self._database_lost = True
                _LOGGER.exception("partition balancing failed; trying again")

    async def _renew(self, conn: asyncpg.Connection) -> set[int]:
        """Renew this worker's registration and every lease it holds; the partitions held."""
        # Read before the renewal starts: under load its answer may come seconds after the
        # database's now() that started the lease, and the lease runs from that now().
        sent = time.monotonic()
        async with conn.transaction():
            await leases.register_worker(
                conn,
                self.worker,
                self.instance,
                socket.gethostname(),
                os.getpid(),
                self.lease_s,
            )
            held = await leases.renew_leases(conn, self.worker, self.lease_s)
        self._renewed_at = sent
        return held

    @contextlib.asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        """Renew every tick while the body runs. Opening sessions can take longer than a
        lease (NATS makes a replicated JetStream consumer per subscription, and confirms
        them late when busy), and so can a handover's drain: a registration or a lease
        lapsing meanwhile is taken by another worker, and the partitions ping-pong."""

        async def renew_every_tick() -> None:
            while True:
                await asyncio.sleep(self.tick_s)
                try:
                    async with acquire(self._pool, DEADLINE_S) as conn:
                        await self._renew(conn)
                except DATABASE_ERRORS as e:
                    # The balancing loop tells the database's loss when this tick ends.
                    _LOGGER.warning("partition leases not renewed while balancing (%s)", e)

        task = asyncio.create_task(renew_every_tick(), name="partition-lease-renewal")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> None:
        owned = set(self.owned)
        async with acquire(self._pool, DEADLINE_S) as conn:
            held = await self._renew(conn)
            now = time.monotonic()
            if self._database_lost:
                self._database_lost = False
                quiet_s = QUIET_LEASES * self.lease_s
                self._quiet_until = now + quiet_s
                _LOGGER.info("database back: leases renewed; balancing again in %.0f s", quiet_s)
            live = await leases.live_workers(conn)
            self.live_workers = len(live)
            take, give = [], []
            if now >= self._quiet_until:
                free = await leases.free_partitions(conn, self.partitions)
                take, give = rebalance(held, free, self.partitions, len(live), start=self._start)
            claimed = await leases.claim(conn, self.worker, take, self.lease_s)
            # Not right after an outage either: live workers have not renewed their rows yet.
            dead = (
                await leases.retire_dead_workers(conn, RETIRE_AFTER_S)
                if now >= self._quiet_until
                else []
            )
        for gone in dead:
            # A dead worker's retained `{"online": false}` would stay for ever: clear it.
            self._mqtt.publish(self._topics.gateway_state(gone), b"", qos=1, retain=True)
        for n in sorted(owned - held):
            self.losses += 1
            _LOGGER.warning(
                "partition %d: lease held by another worker now; closing its session", n
            )
            await self._mqtt.close_partition(n)
            self._let_go([n])
        async with self._renewing():
            if give:
                await self._release(give)
            # Leases of ours without a session: claimed now, or left by this id's previous
            # life.
            await self._take(sorted((claimed | held) - owned - set(give)))
        self._sync_subscriptions()
        self._mqtt.watch_unknown(0 in self.owned)

    async def _take(self, taken: list[int]) -> None:
        if not taken:
            return
        started = time.monotonic()
        by_partition = self.devices_by_partition()
        devices = sorted(d for n in taken for d in by_partition.get(n, ()))
        async with acquire(self._pool, DEADLINE_S) as conn:
            recent = await access_log.recent_decisions(
                conn, datetime.now(UTC) - DEDUPE_HORIZON, with_person=True, devices=devices
            )
        # Before the sessions deliver anything: a redelivered event the last owner decided
        # and logged is answered with its logged decision, not decided again.
        remember_decisions(self._seen, recent, self._roster.index)
        await self._devices.adopt(set(devices))
        results = await asyncio.gather(
            *(self._mqtt.open_partition(n, sorted(by_partition.get(n, ()))) for n in taken),
            return_exceptions=True,
        )
        failed = [n for n, r in zip(taken, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            _LOGGER.error(
                "partitions %s: session not opened (%s); giving their leases back",
                failed,
                next(r for r in results if isinstance(r, BaseException)),
            )
            with contextlib.suppress(Exception):
                async with acquire(self._pool, DEADLINE_S) as conn:
                    await leases.release(conn, self.worker, failed)
        self.takeovers += len(taken) - len(failed)
        _LOGGER.info(
            "took partitions %s (%d devices, %d logged decisions remembered) in %.2f s; "
            "owning %d of %d with %d live workers",
            [n for n in taken if n not in failed],
            len(devices),
            len(recent),
            time.monotonic() - started,
            len(self.owned),
            self.partitions,
            self.live_workers,
        )

    async def _release(self, give: list[int]) -> None:
        """Hand partitions over cleanly: stop taking their events, finish and acknowledge
        what was taken, close their sessions, then free the leases."""
        for n in give:
            self._mqtt.hold_partition(n)
        # Bounded (the leases are renewed meanwhile, but the next balancing waits for it).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.lease_s / 2):
                if self._finish_claims is not None:  # then into the journal, drained next
                    by_partition = self.devices_by_partition()
                    await self._finish_claims({d for n in give for d in by_partition.get(n, ())})
                await self._journal.drain()
        await asyncio.sleep(0.05)  # the follow-ups' acks leave with the next write
        for n in give:
            await self._mqtt.close_partition(n)
        self._let_go(give)
        async with acquire(self._pool, DEADLINE_S) as conn:
            await leases.release(conn, self.worker, give)
        _LOGGER.info(
            "released partitions %s (over the fair share with %d live workers)",
            give,
            self.live_workers,
        )

    def _sync_subscriptions(self) -> None:
        by_partition = self.devices_by_partition()
        for n in self.owned:
            self._mqtt.sync_devices(n, by_partition.get(n, set()))

    def _taken_over(self, partition: int) -> None:
        self.losses += 1
        self._let_go([partition])

    def _let_go(self, partitions: list[int]) -> None:
        """Forget the cards waiting at the doors of partitions now another worker's."""
        by_partition = self.devices_by_partition()
        devices = {d for n in partitions for d in by_partition.get(n, ())}
        forgotten = self._forget_devices(devices)
        if forgotten:
            _LOGGER.info(
                "let go of %d cards waiting for a temperature in partitions %s: their new "
                "owner decides them",
                forgotten,
                partitions,
            )
