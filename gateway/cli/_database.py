"""Opening the configured database for a command, with one-line errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import click

from gateway.settings import Settings
from gateway.store.db import connect, redact_dsn
from gateway.store.embedded import EmbeddedDatabaseError, resolve_database_url
from gateway.store.migrate import pending_migrations

CONNECT_TIMEOUT_S = 10.0


def database_url(settings: Settings) -> str:
    """The DSN to use, starting the embedded server when none is configured."""
    try:
        return resolve_database_url(settings)
    except EmbeddedDatabaseError as exc:
        raise click.ClickException(str(exc)) from None


@asynccontextmanager
async def open_database(
    dsn: str, *, require_schema: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to `dsn`; a click error when unreachable or (optionally) not migrated."""
    try:
        conn = await connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, socket.gaierror) as exc:
        raise click.ClickException(
            f"cannot reach the database at {redact_dsn(dsn)} ({exc.__class__.__name__}: {exc}); "
            "start PostgreSQL or set CAMPUSGATE_DATABASE_URL / --database-url"
        ) from None
    except asyncpg.PostgresError as exc:
        raise click.ClickException(
            f"the database at {redact_dsn(dsn)} refused the connection: {exc}; "
            "check CAMPUSGATE_DATABASE_URL / --database-url"
        ) from None
    try:
        if require_schema:
            missing = await pending_migrations(conn)
            if missing:
                raise click.ClickException(
                    f"the database schema is not up to date ({len(missing)} migrations pending); "
                    "run `campusgate migrate` first"
                )
        yield conn
    finally:
        await conn.close()
