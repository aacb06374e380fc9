"""Database fixtures for every test (imported once by tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

ROSTER_CHANNEL = "campusgate_roster"


@pytest.fixture
def new_database(database_factory: Callable[[str], str]) -> Callable[[str], Awaitable[str]]:
    """An async maker of empty databases (database_factory runs its own event loop)."""

    async def make(label: str = "t") -> str:
        return await asyncio.to_thread(database_factory, label)

    return make


@pytest.fixture
async def fresh_db(new_database: Callable[[str], Awaitable[str]]) -> str:
    dsn = await new_database("store")
    await apply_migrations(dsn)
    return dsn


@pytest.fixture
async def conn(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(fresh_db)
    yield connection
    await connection.close()


class RosterListener:
    """Collects roster notifications; `settle()` waits until all sent so far have arrived."""

    def __init__(self, listener: asyncpg.Connection, sender: asyncpg.Connection) -> None:
        self.payloads: list[str] = []
        self._listener = listener
        self._sender = sender
        self._marker = 0

    def _on(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(payload)

    async def settle(self) -> list[str]:
        """Send a marker, wait for it, and return (and clear) what came before it."""
        self._marker += 1
        marker = f"marker-{self._marker}"
        await self._sender.execute("SELECT pg_notify($1, $2)", ROSTER_CHANNEL, marker)
        for _ in range(200):
            if marker in self.payloads:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("roster notification marker never arrived")
        before = self.payloads[: self.payloads.index(marker)]
        self.payloads.clear()
        return before


@pytest.fixture
async def roster_listener(fresh_db: str) -> AsyncIterator[RosterListener]:
    listener = await asyncpg.connect(fresh_db)
    sender = await asyncpg.connect(fresh_db)
    watcher = RosterListener(listener, sender)
    await listener.add_listener(ROSTER_CHANNEL, watcher._on)
    yield watcher
    await listener.close()
    await sender.close()


@pytest.fixture(scope="module")
async def fresh_db_module(database_factory: Callable[[str], str]) -> str:
    """A migrated database shared by one test module (for tests that must not write)."""
    dsn = await asyncio.to_thread(database_factory, "mod")
    await apply_migrations(dsn)
    return dsn
