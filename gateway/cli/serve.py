"""`campusgate serve`: gateway workers (and, once it exists, the HTTP API)."""

from __future__ import annotations

import socket

import click

from devices.transports.mqtt import MqttError
from gateway.cli import settings_of
from gateway.cli.runtime import gateway_config, open_broker, open_database, run, stop_signal
from gateway.pipeline.gateway import Gateway


async def serve_gateway(
    ctx: click.Context, *, client_id: str, share_group: str | None, migrate: bool
) -> None:
    settings = settings_of(ctx)
    dsn = await open_database(settings, migrate=migrate)
    broker = await open_broker(settings)
    gateway = Gateway(
        gateway_config(settings, dsn, broker.address, client_id=client_id, share_group=share_group)
    )
    try:
        async with stop_signal() as stop:
            try:
                await gateway.start()
            except MqttError as exc:
                raise click.ClickException(
                    f"{exc}; check CAMPUSGATE_MQTT_URL and that the broker is running"
                ) from None
            click.echo(f"campusgate gateway {client_id} running; Ctrl-C stops it", err=True)
            await stop.wait()
    finally:
        await gateway.stop()
        await broker.close()


@click.command()
@click.option(
    "--client-id",
    default="campusgate-gateway",
    show_default=True,
    help="MQTT client id (keeps the session)",
)
@click.pass_context
def command(ctx: click.Context, client_id: str) -> None:
    """Run the gateway against the configured database and broker (migrations first)."""
    run(lambda: serve_gateway(ctx, client_id=client_id, share_group=None, migrate=True))


def default_worker_id() -> str:
    return f"campusgate-worker-{socket.gethostname()}"
