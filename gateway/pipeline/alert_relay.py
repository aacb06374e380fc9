"""The alert relay: publishes on MQTT the alerts stored where no broker client is.

The gateway publishes its own alerts once they are stored (gateway/pipeline/alerting.py).
The scheduled jobs run in the API process, which has no MQTT connection (and the broker's
ACL lets only the gateway account write `P/alerts/#`), so an alert one of them raises
(`visitor_overstay`) is stored with `publish_pending` (migration 0031). Every worker
polls for such alerts; a claim takes each once across workers, and it is published as
the gateway's own are: `Alert.to_wire`, no health details, on `P/alerts/{kind}`.

At most once, like the gateway's own alerts: one claimed by a worker that dies before
its publish reaches the broker is not published (it is stored and on the console).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from gateway.pipeline.publisher import Publisher
from gateway.store import alerts as alert_store
from gateway.store.db import DATABASE_ERRORS, acquire

_LOGGER = logging.getLogger(__name__)

POLL_S = 2.0
BATCH = 100
DEADLINE_S = 5.0


class AlertRelay:
    """Claims and publishes pending alerts every `poll_s` seconds until stopped."""

    def __init__(self, pool: asyncpg.Pool, publisher: Publisher, *, poll_s: float = POLL_S):
        self._pool = pool
        self._publisher = publisher
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self.relayed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def relay(self) -> int:
        """Publish what is pending now (in batches); how many alerts were published."""
        published = 0
        while True:
            async with acquire(self._pool, DEADLINE_S) as conn:
                claimed = await alert_store.claim_pending_publications(conn, BATCH)
            for alert in claimed:
                self._publisher.alert(alert)
            published += len(claimed)
            self.relayed += len(claimed)
            if len(claimed) < BATCH:
                return published

    async def _run(self) -> None:
        away = False  # the database did not answer the last poll: said once, not every poll
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.relay()
            except DATABASE_ERRORS as exc:
                # The database away: the doors carry on (spool), and so do pending alerts.
                if not away:
                    _LOGGER.warning(
                        "alert relay: the database did not answer (%s); retrying every %.0f s",
                        exc,
                        self._poll_s,
                    )
                away = True
                continue
            except Exception:  # a bug here must not end the relay for good
                _LOGGER.exception("alert relay failed; trying again in %.0f s", self._poll_s)
                continue
            if away:
                _LOGGER.info("alert relay: the database answers again")
                away = False
