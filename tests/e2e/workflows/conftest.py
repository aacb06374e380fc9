"""Workflow tests: a fresh migrated database per test, seeded with a small campus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from wf_campus import seed_campus


@pytest.fixture
async def campus(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """`conn` on a database holding the small campus of wf_campus.py."""
    await seed_campus(conn)
    yield conn
