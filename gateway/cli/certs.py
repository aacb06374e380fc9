"""`campusgate certs`: the broker's CA, its server certificate and device certificates."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.services.certificates import (
    DEVICE_DAYS,
    SERVER_DAYS,
    CertificateError,
    init_ca,
    issue_device,
)


@click.group("certs")
def command() -> None:
    """TLS certificates for the broker (mqtts://) and the devices."""


@command.command("init")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="a name or address clients use for the broker; repeatable",
)
@click.option("--days", default=SERVER_DAYS, show_default=True, help="server certificate validity")
@click.option(
    "--force", is_flag=True, help="replace an existing CA (its certificates stop working)"
)
def init(out: Path, hosts: tuple[str, ...], days: int, force: bool) -> None:
    """Make a CA (ca.crt, ca.key) and the broker's certificate (server.crt, server.key)."""
    try:
        ca, server = init_ca(out, list(hosts), days=days, force=force)
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {ca.cert} and {ca.key} (keep it offline), {server.cert} and {server.key}"
        f" for {', '.join(hosts)}, valid until {server.not_after:%Y-%m-%d}",
        err=True,
    )


@command.command("device")
@click.argument("device_id")
@click.option("--ca", "ca_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", default=DEVICE_DAYS, show_default=True, help="validity")
def device(device_id: str, ca_dir: Path, out: Path, days: int) -> None:
    """A client certificate with CN=DEVICE_ID (the broker's `use_identity_as_username`)."""
    try:
        issued = issue_device(device_id, ca_dir, out, days=days)
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {issued.cert} and {issued.key}, valid until {issued.not_after:%Y-%m-%d}", err=True
    )
