"""Check-in tests: a fresh migrated database per test holding a small campus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from checkin_campus import seed


@pytest.fixture
async def campus(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """`conn` on a database holding the campus of checkin_campus.py."""
    await seed(conn)
    yield conn
