"""One allowlist publisher among the workers, elected through PostgreSQL (issue 13).

Each publisher keeps its own versions, and a terminal applies a delta only to the list it
was made on: a retained list from one worker and a retained delta from another would be
refused. So only the worker holding a session advisory lock (per topic prefix) publishes;
the others stand by and try again every `ELECT_S`. The lock lives on a connection of its
own (a pool's reset would release it): when the leader dies or loses that connection,
PostgreSQL frees the lock and a standby takes over with fresh full lists (which also
clear the old leader's retained deltas). A leader that cannot reach its connection stops
publishing at once, before anyone else can take the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from gateway.pipeline.allowlists import AllowlistPublisher
from gateway.store.db import ping
from gateway.store.locks import LockKey, try_hold

_LOGGER = logging.getLogger(__name__)

ELECT_S = 1.0  # how often a standby tries the lock and a leader checks its connection
CHECK_S = 3.0  # a leader whose connection does not answer within this resigns


class PublisherElection:
    """Runs a publisher (a new one for every term) only while this worker holds the lock."""

    def __init__(
        self,
        database_url: str,
        scope: str,
        make_publisher: Callable[[], AllowlistPublisher],
        *,
        elect_s: float = ELECT_S,
    ) -> None:
        self._dsn = database_url
        self._scope = scope
        self._make = make_publisher
        self._elect_s = elect_s
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.publisher: AllowlistPublisher | None = None
        self.terms = 0

    @property
    def leading(self) -> bool:
        return self.publisher is not None

    def holds(self) -> bool:
        """Whether the lock's session still looks alive: the publisher sends only then.

        Checked at every send, so a session the server ended (its socket closed) stops
        publishing at once, not at the next round."""
        conn = self._conn
        return self.publisher is not None and conn is not None and not conn.is_closed()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="allowlist-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._resign()

    async def _run(self) -> None:
        while True:
            try:
                await self._round()
            except Exception as exc:  # the database away: stand by, try again
                if self.leading:
                    _LOGGER.warning("allowlists: lost the publisher lock (%s); standing by", exc)
                await self._resign()
            await asyncio.sleep(self._elect_s)

    async def _round(self) -> None:
        if self._conn is None or self._conn.is_closed():
            await self._resign()
            self._conn = await asyncio.wait_for(asyncpg.connect(self._dsn), CHECK_S)
        if self.leading:
            # The lock is as alive as this session: a leader that cannot reach it resigns.
            await asyncio.wait_for(ping(self._conn), CHECK_S)
            return
        if await asyncio.wait_for(try_hold(self._conn, LockKey.ALLOWLISTS, self._scope), CHECK_S):
            # A fresh publisher: nothing of an earlier term's lists is taken for granted.
            self.publisher = self._make()
            self.publisher.start()
            self.terms += 1
            _LOGGER.info("allowlists: this worker publishes them (term %d)", self.terms)

    async def _resign(self) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.stop()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # ends the session, and with it the lock
