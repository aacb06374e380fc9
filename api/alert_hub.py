"""Live alert changes: one LISTEN connection per app fans out to the consoles' WebSockets.

Every lifecycle step is an alert_history row; when its transaction commits it gets a
commit-ordered alert_feed sequence number and a NOTIFY on `campusgate_alert_changes`
(migration 0007), whichever process made it. That number is the cursor a reconnecting
console passes as `?since=` to receive what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from gateway.store.alert_feed import AlertChange, alert_change
from gateway.store.db import DATABASE_ERRORS, connect

_LOGGER = logging.getLogger(__name__)
CHANNEL = "campusgate_alert_changes"
# Migration 0015: an operator changed (disabled, removed, token or password changed) or one
# of its sessions ended; the payload is the operator id.
OPERATOR_CHANNEL = "campusgate_operator_changes"
QUEUE_SIZE = 1000


class AlertHub:
    """Reads each notified change once and hands it to every subscriber's queue."""

    def __init__(self, dsn: str, pool: asyncpg.Pool) -> None:
        self._dsn = dsn
        self._pool = pool
        self._listener: asyncpg.Connection | None = None
        self._cursors: asyncio.Queue[int] = asyncio.Queue()
        self._subscribers: set[asyncio.Queue[AlertChange | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._operator_watchers: dict[str, set[asyncio.Event]] = {}

    async def start(self) -> None:
        self._listener = await connect(self._dsn)
        await self._listener.add_listener(CHANNEL, self._on_notify)
        await self._listener.add_listener(OPERATOR_CHANNEL, self._on_operator_change)
        self._task = asyncio.create_task(self._fan_out(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()
        for queue in self._subscribers:
            queue.put_nowait(None)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._cursors.put_nowait(int(payload))

    def _on_operator_change(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for event in self._operator_watchers.get(payload, ()):
            event.set()

    def watch_operator(self, operator_id: str) -> asyncio.Event:
        """An event set whenever operator `operator_id` changes or loses a session."""
        event = asyncio.Event()
        self._operator_watchers.setdefault(operator_id, set()).add(event)
        return event

    def unwatch_operator(self, operator_id: str, event: asyncio.Event) -> None:
        watchers = self._operator_watchers.get(operator_id)
        if watchers is not None:
            watchers.discard(event)
            if not watchers:
                del self._operator_watchers[operator_id]

    async def _fan_out(self) -> None:
        while True:
            cursor = await self._cursors.get()
            try:
                async with self._pool.acquire() as conn:
                    change = await alert_change(conn, cursor)
            except DATABASE_ERRORS:
                _LOGGER.exception("cannot read alert change %d", cursor)
                continue
            if change is None:
                continue
            for queue in list(self._subscribers):
                try:
                    queue.put_nowait(change)
                except asyncio.QueueFull:
                    # A console that does not read is cut off; it reconnects with ?since=.
                    self._subscribers.discard(queue)
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.get_nowait()
                    queue.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[AlertChange | None]:
        queue: asyncio.Queue[AlertChange | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AlertChange | None]) -> None:
        self._subscribers.discard(queue)
