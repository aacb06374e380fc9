"""Check-in tests: a fresh migrated database per test holding a small campus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from checkin_campus import seed
from db_fixtures import (  # noqa: F401
    conn,
    fresh_db,
    new_database,
)


@pytest.fixture
async def campus(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    """`conn` on a database holding the campus of checkin_campus.py."""
    await seed(conn)
    yield conn
