"""`campusgate user add NAME --role ROLE`: create an operator and show its token once."""

from __future__ import annotations

import asyncio
import sys

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.accounts import PasswordPolicyError, UnknownOperatorError, set_password
from gateway.store.accounts import set_org_unit
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
@click.option("--org-unit", default=None, help="the org unit a liaison sees (with all below it)")
@click.option(
    "--password",
    "with_password",
    is_flag=True,
    help="also set a console password (prompted, or read from stdin when not a terminal)",
)
@click.pass_context
def add(
    ctx: click.Context, name: str, role: str, org_unit: str | None, with_password: bool
) -> None:
    """Create operator NAME and print its API token (shown only this once)."""
    if not name.strip():
        raise click.ClickException("the operator name must not be empty")
    password = _read_password() if with_password else None
    dsn = database_url(settings_of(ctx))
    token = asyncio.run(_add(dsn, name, role, org_unit, password))
    click.echo(f"created operator {name.strip()} ({role}); API token (shown only once):", err=True)
    click.echo(token)


async def _add(dsn: str, name: str, role: str, org_unit: str | None, password: str | None) -> str:
    async with open_database(dsn) as conn:
        try:
            async with conn.transaction():
                token = await add_operator(conn, name, role)
                if org_unit is not None:
                    known = await conn.fetchval(
                        "SELECT EXISTS (SELECT 1 FROM org_units WHERE id = $1)", org_unit
                    )
                    if not known:
                        raise click.ClickException(f"unknown org unit {org_unit!r}")
                    await set_org_unit(conn, name.strip(), org_unit)
                await record_audit(
                    conn,
                    "cli",
                    "create",
                    "operator",
                    name.strip(),
                    after={"role": role, "org_unit": org_unit},
                )
                if password is not None:
                    await set_password(conn, name.strip(), password, by="cli")
        except (OperatorExistsError, PasswordPolicyError) as exc:
            raise click.ClickException(str(exc)) from None
        return token


def _read_password() -> str:
    """Prompted twice on a terminal; otherwise the first line of stdin."""
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.ClickException("no password on stdin")
    return line


@command.command("passwd")
@click.argument("name")
@click.pass_context
def passwd(ctx: click.Context, name: str) -> None:
    """Set the console password of operator NAME (prompted, or the first line of stdin)."""
    password = _read_password()
    dsn = database_url(settings_of(ctx))
    asyncio.run(_passwd(dsn, name, password))
    click.echo(f"password of {name} set", err=True)


async def _passwd(dsn: str, name: str, password: str) -> None:
    async with open_database(dsn) as conn:
        try:
            await set_password(conn, name, password, by="cli")
        except (UnknownOperatorError, PasswordPolicyError) as exc:
            raise click.ClickException(str(exc)) from None
