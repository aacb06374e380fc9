"""`campusgate worker`: gateway workers only; several share the device topics."""

from __future__ import annotations

import click

from gateway.cli import settings_of
from gateway.cli.runtime import run
from gateway.cli.serve import default_worker_id, serve_gateway


@click.command()
@click.option(
    "--worker-id", default=None, help="MQTT client id of this worker (stable across restarts)"
)
@click.pass_context
def command(ctx: click.Context, worker_id: str | None) -> None:
    """Run one gateway worker sharing `P/devices/+/events` with the others (MQTT 5 shared subscription)."""
    settings = settings_of(ctx)
    if not settings.mqtt_url or not settings.database_url:
        # Workers share one broker and one database: embedded ones would be private to each.
        raise click.ClickException(
            "a worker needs CAMPUSGATE_MQTT_URL and CAMPUSGATE_DATABASE_URL (or --mqtt-url and --database-url)"
        )
    run(
        lambda: serve_gateway(
            ctx,
            client_id=worker_id or default_worker_id(),
            share_group=settings.worker_group,
            migrate=False,
        )
    )
