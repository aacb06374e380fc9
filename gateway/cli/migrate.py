"""`campusgate migrate`: bring the schema up to date."""

from __future__ import annotations

import asyncio

import asyncpg
import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.store.db import redact_dsn
from gateway.store.migrate import apply_migrations_on


@click.command("migrate")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Apply the pending schema migrations; safe to run again."""
    dsn = database_url(settings_of(ctx))
    try:
        applied = asyncio.run(_migrate(dsn))
    except asyncpg.PostgresError as exc:
        # Each migration runs in its own transaction: the failing one left nothing behind.
        raise click.ClickException(
            f"a migration failed on {redact_dsn(dsn)} and was rolled back: {exc}"
        ) from None
    if applied:
        click.echo(f"applied {len(applied)} migrations to {redact_dsn(dsn)}: {', '.join(applied)}")
    else:
        click.echo(f"schema of {redact_dsn(dsn)} is up to date")


async def _migrate(dsn: str) -> list[str]:
    async with open_database(dsn, require_schema=False) as conn:
        return await apply_migrations_on(conn)
