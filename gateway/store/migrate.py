"""Plain SQL migrations from gateway/store/migrations, applied in name order.

Each file runs in its own transaction together with its row in
`schema_migrations`; a session advisory lock keeps two processes from racing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

from gateway.store.locks import LockKey, session_lock

_LOGGER = logging.getLogger(__name__)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migration files shipped with the package, in the order they apply."""
    folder = resources.files("gateway.store").joinpath("migrations")
    files = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    return [Migration(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Names of the migrations this database still lacks (all of them on an empty one)."""
    names = [m.name for m in available_migrations()]
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return names
    applied = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
    return [n for n in names if n not in applied]


async def apply_migrations(dsn: str) -> list[str]:
    """Bring the schema at `dsn` up to date; returns the names applied now (empty if none)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations_on(conn)
    finally:
        await conn.close()


async def apply_migrations_on(conn: asyncpg.Connection) -> list[str]:
    """As apply_migrations, on an open connection (outside any transaction)."""
    async with session_lock(conn, LockKey.MIGRATE):
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT name, sha256 FROM schema_migrations")
        applied = {r["name"]: r["sha256"] for r in rows}
        done: list[str] = []
        for migration in available_migrations():
            known = applied.get(migration.name)
            if known is not None:
                if known != migration.sha256:
                    _LOGGER.warning("migration %s changed after it was applied", migration.name)
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)",
                    migration.name,
                    migration.sha256,
                )
            _LOGGER.info("applied migration %s", migration.name)
            done.append(migration.name)
        return done
