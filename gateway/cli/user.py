"""`campusgate user`: create operators, set passwords, and cut them off.

`add` shows the API token once; `token` issues a new one (optionally expiring) in place
of the old; `revoke-tokens`, `disable` and `remove` end access at once, including open
sessions and live streams; `enable` undoes `disable`. Every change is audited.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.domain.operators import OperatorRole
from gateway.services.accounts import (
    PasswordPolicyError,
    UnknownOperatorError,
    disable_operator,
    enable_operator,
    issue_token,
    remove_operator,
    revoke_tokens,
    set_password,
)
from gateway.store import roster_write
from gateway.store.accounts import set_org_unit
from gateway.store.audit import record_audit
from gateway.store.operators import OperatorExistsError, add_operator


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
@click.option(
    "--expires-in", default=None, help="the API token stops working after this long: 30d, 12h"
)
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    role: str,
    org_unit: str | None,
    with_password: bool,
    expires_in: str | None,
) -> None:
    """Create operator NAME and print its API token (shown only this once)."""
    if not name.strip():
        raise click.ClickException("the operator name must not be empty")
    lifetime = parse_duration(expires_in) if expires_in else None
    password = _read_password() if with_password else None
    dsn = database_url(settings_of(ctx))
    token = asyncio.run(_add(dsn, name, role, org_unit, password, lifetime))
    click.echo(f"created operator {name.strip()} ({role}); API token (shown only once):", err=True)
    click.echo(token)


async def _add(
    dsn: str,
    name: str,
    role: str,
    org_unit: str | None,
    password: str | None,
    lifetime: timedelta | None,
) -> str:
    async with open_database(dsn) as conn:
        try:
            async with conn.transaction():
                token = await add_operator(conn, name, role)
                if lifetime is not None:
                    token = await issue_token(conn, name.strip(), by="cli", expires_in=lifetime)
                if org_unit is not None:
                    if not await roster_write.row_exists(conn, "org_units", org_unit):
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


_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` as a timedelta; a click error otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match[1]) == 0:
        raise click.BadParameter(f"{text!r} is not a duration such as 30d, 12h, 90m or 2w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _run_on(ctx: click.Context, action: Callable[..., Awaitable[object]], name: str) -> object:
    dsn = database_url(settings_of(ctx))

    async def go() -> object:
        async with open_database(dsn) as conn:
            try:
                return await action(conn, name)
            except UnknownOperatorError as exc:
                raise click.ClickException(str(exc)) from None

    return asyncio.run(go())


@command.command("token")
@click.argument("name")
@click.option(
    "--expires-in",
    default=None,
    help="the token stops working after this long: 30d, 12h, 90m, 2w (default: never)",
)
@click.pass_context
def token(ctx: click.Context, name: str, expires_in: str | None) -> None:
    """Issue a new API token for NAME (the old one stops working); shown only once."""
    lifetime = parse_duration(expires_in) if expires_in else None
    new = _run_on(ctx, lambda conn, n: issue_token(conn, n, by="cli", expires_in=lifetime), name)
    until = f", valid for {expires_in}" if expires_in else ""
    click.echo(f"new API token of {name}{until} (shown only once):", err=True)
    click.echo(new)


@command.command("revoke-tokens")
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """Revoke NAME's API token at once (live streams opened with it close)."""
    _run_on(ctx, lambda conn, n: revoke_tokens(conn, n, by="cli"), name)
    click.echo(
        f"API token of {name} revoked; `campusgate user token {name}` issues a new one", err=True
    )


@command.command("disable")
@click.argument("name")
@click.pass_context
def disable(ctx: click.Context, name: str) -> None:
    """Disable NAME: token, password, sessions and live streams stop at once."""
    ended = _run_on(ctx, lambda conn, n: disable_operator(conn, n, by="cli"), name)
    click.echo(f"operator {name} disabled; {ended} session(s) ended", err=True)


@command.command("enable")
@click.argument("name")
@click.pass_context
def enable(ctx: click.Context, name: str) -> None:
    """Enable NAME again (its token and password work again; sessions do not come back)."""
    _run_on(ctx, lambda conn, n: enable_operator(conn, n, by="cli"), name)
    click.echo(f"operator {name} enabled", err=True)


@command.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove operator NAME for good (the audit log keeps what it did)."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"remove operator {name}?", abort=True)
    _run_on(ctx, lambda conn, n: remove_operator(conn, n, by="cli"), name)
    click.echo(f"operator {name} removed", err=True)
