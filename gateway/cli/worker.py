"""`campusgate worker`: gateway workers only; several share the campus by partition."""

from __future__ import annotations

import click

from gateway.cli import settings_of
from gateway.cli.runtime import run
from gateway.cli.serve import default_worker_id, serve_gateway


@click.command()
@click.option(
    "--worker-id",
    default=None,
    help="this worker's id and MQTT client id (default: campusgate-worker-<host>-<pid>)",
)
@click.pass_context
def command(ctx: click.Context, worker_id: str | None) -> None:
    """Run one gateway worker: it owns partitions of the doors by lease in PostgreSQL, one
    persistent MQTT session each, and takes over those of a worker that dies."""
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
            partitioned=True,
            migrate=False,
        )
    )
