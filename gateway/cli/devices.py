"""`campusgate devices credentials`: the broker's accounts and ACL from the roster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from gateway.cli import settings_of
from gateway.cli._database import database_url, open_database
from gateway.cli.runtime import run, stop_signal
from gateway.services.broker_credentials import (
    ACL,
    DEVICE_SECRETS,
    PASSWD,
    SERVICE_PASSWD,
    SERVICE_SECRETS,
    CredentialsError,
    Outcome,
    reload_broker,
    write_credentials,
)
from gateway.services.broker_credentials_watch import watch_roster
from gateway.services.nats_accounts import NATS_ACCOUNTS
from gateway.store.broker_devices import mqtt_device_ids


@click.group("devices")
def command() -> None:
    """Devices' identities on the broker."""


@command.command("credentials")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="directory of passwd, passwd-services, acl, nats-accounts.conf, device-secrets.csv,"
    " service-secrets.csv",
)
@click.option(
    "--rotate",
    multiple=True,
    metavar="DEVICE",
    help="give this device (or service account) a new password; repeatable",
)
@click.option(
    "--broker-pid-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the broker's pid file (Mosquitto's or a nats-server's): send it SIGHUP so it"
    " reloads the accounts (no restart)",
)
@click.option(
    "--sim-account",
    is_flag=True,
    help="also make campusgate-sim, allowed every device's side (labs and benches only)",
)
@click.option(
    "--watch",
    is_flag=True,
    help="keep running: rewrite and reload whenever the roster's devices change",
)
@click.pass_context
def credentials(
    ctx: click.Context,
    out: Path,
    rotate: tuple[str, ...],
    broker_pid_file: Path | None,
    sim_account: bool,
    watch: bool,
) -> None:
    """Write the broker's accounts for every MQTT device of the roster: Mosquitto's password
    file and ACL, and the same accounts as a NATS `authorization` file (nats-accounts.conf).

    Devices keep their passwords across runs (device-secrets.csv, mode 0600, is the
    source for provisioning firmware); devices gone from the roster are dropped.
    """
    settings = settings_of(ctx)
    dsn = database_url(settings)
    if watch:
        if rotate:
            raise click.ClickException("--rotate is a one-off: run it without --watch")
        run(lambda: _watch(dsn, out, settings.topic_prefix, broker_pid_file, sim_account))
        return
    ids = asyncio.run(_device_ids(dsn))
    try:
        outcome = write_credentials(
            out, ids, prefix=settings.topic_prefix, rotate=rotate, sim_account=sim_account
        )
        if broker_pid_file is not None:
            reload_broker(broker_pid_file)
            outcome.reloaded = True
    except CredentialsError as exc:
        raise click.ClickException(str(exc)) from None
    _report(out, outcome)


async def _device_ids(dsn: str) -> list[str]:
    async with open_database(dsn) as conn:
        return await mqtt_device_ids(conn)


async def _watch(
    dsn: str, out: Path, prefix: str, pid_file: Path | None, sim_account: bool
) -> None:
    async with open_database(dsn):  # a clear error now rather than retries for ever
        pass
    async with stop_signal() as stop:
        click.echo(f"watching the roster; broker accounts in {out} (Ctrl-C to stop)", err=True)
        await watch_roster(
            dsn,
            out,
            prefix=prefix,
            pid_file=pid_file,
            sim_account=sim_account,
            stop=stop,
            on_update=lambda outcome: _report(out, outcome),
        )


def _report(out: Path, outcome: Outcome) -> None:
    for device_id, reason in sorted(outcome.refused.items()):
        click.echo(f"skipped device {device_id!r}: {reason}", err=True)
    for device_id, reason in sorted(outcome.nats_skipped.items()):
        click.echo(
            f"NATS: {reason}" if device_id == "*" else f"NATS: {device_id!r}: {reason}", err=True
        )
    parts = [f"{outcome.devices} devices"]
    for label, ids in (
        ("added", outcome.added),
        ("rotated", outcome.rotated),
        ("removed", outcome.removed),
    ):
        if ids:
            parts.append(f"{label} {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    click.echo(
        f"wrote {out / PASSWD}, {out / SERVICE_PASSWD}, {out / ACL}, {out / NATS_ACCOUNTS},"
        f" {out / DEVICE_SECRETS}"
        f" and {out / SERVICE_SECRETS}"
        f" ({'; '.join(parts)})"
        + ("; broker reloaded" if outcome.reloaded else "; reload the broker (SIGHUP)"),
        err=True,
    )
