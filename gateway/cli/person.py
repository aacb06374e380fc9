"""`campusgate person`: invite people to the mobile page, sign them out everywhere.

`invite` prints a one-time link (shown only this once; only its hash is stored) to send to
the person; they open it, choose a password, then sign in with their person id.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.services.person_accounts import (
    InactivePersonError,
    UnknownPersonError,
    end_person_sessions,
    invite,
)


@click.group("person")
def command() -> None:
    """People's own accounts on the mobile page /me/."""


@command.command("invite")
@click.argument("person_id")
@click.option(
    "--days", type=click.IntRange(1, 90), default=None,
    help="the link stops working after this many days (default CAMPUSGATE_PERSON_INVITATION_DAYS)",
)  # fmt: skip
@click.option(
    "--base-url", default=None,
    help="where people reach the API (default CAMPUSGATE_PUBLIC_URL)",
)  # fmt: skip
@click.pass_context
def invite_command(
    ctx: click.Context, person_id: str, days: int | None, base_url: str | None
) -> None:
    """Print a one-time invitation link for PERSON_ID (their earlier links stop working)."""
    settings = settings_of(ctx)
    base = (base_url or settings.public_url).rstrip("/")
    if not base:
        raise click.ClickException(
            "no address to put in the link: set CAMPUSGATE_PUBLIC_URL or pass --base-url"
        )
    lifetime = timedelta(days=days or settings.person_invitation_days)
    token, expires_at = asyncio.run(_invite(database_url(settings), person_id, lifetime))
    click.echo(
        f"invitation for {person_id}, valid until {expires_at:%Y-%m-%d %H:%M} UTC:", err=True
    )
    click.echo(f"{base}/me/#invite={token}")


async def _invite(dsn: str, person_id: str, lifetime: timedelta) -> tuple[str, object]:
    async with open_database(dsn) as conn:
        try:
            return await invite(conn, person_id, by="cli", lifetime=lifetime)
        except (UnknownPersonError, InactivePersonError) as exc:
            raise click.ClickException(str(exc)) from None


@command.command("end-sessions")
@click.argument("person_id")
@click.pass_context
def end_sessions_command(ctx: click.Context, person_id: str) -> None:
    """Sign PERSON_ID out of the mobile page everywhere (their password stays)."""
    ended = asyncio.run(_end(database_url(settings_of(ctx)), person_id))
    click.echo(f"ended {ended} session(s) of {person_id}")


async def _end(dsn: str, person_id: str) -> int:
    async with open_database(dsn) as conn:
        return await end_person_sessions(conn, person_id, by="cli")
