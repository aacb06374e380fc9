"""`campusgate user add NAME --role ROLE`: create an operator and show its token once."""

from __future__ import annotations

import asyncio

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.store.audit import record_audit
from gateway.store.operators import OperatorExistsError, OperatorRole, add_operator


@click.group("user")
def command() -> None:
    """Operators of the console and API."""


@command.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in OperatorRole]),
    help="what the operator may do",
)
@click.pass_context
def add(ctx: click.Context, name: str, role: str) -> None:
    """Create operator NAME and print its API token (shown only this once)."""
    if not name.strip():
        raise click.ClickException("the operator name must not be empty")
    dsn = database_url(settings_of(ctx))
    token = asyncio.run(_add(dsn, name, role))
    click.echo(f"created operator {name.strip()} ({role}); API token (shown only once):", err=True)
    click.echo(token)


async def _add(dsn: str, name: str, role: str) -> str:
    async with open_database(dsn) as conn:
        try:
            async with conn.transaction():
                token = await add_operator(conn, name, role)
                await record_audit(
                    conn, "cli", "create", "operator", name.strip(), after={"role": role}
                )
        except OperatorExistsError as exc:
            raise click.ClickException(str(exc)) from None
        return token
