"""`campusgate serve`: the gateway, and the HTTP API (console) in a process of its own.

The door loop runs in this process; the API and the scheduled jobs run in a child
(gateway/cli/api_process.py), so API load cannot delay door decisions. When either ends
unexpectedly, `serve` stops the other and exits non-zero with a message saying which:
a supervisor (systemd `Restart=on-failure`) restarts the pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import click

from devices.transports.mqtt import MqttError
from gateway.cli import settings_of
from gateway.cli.api_process import ApiProcess, ApiProcessError, api_socket, console_url
from gateway.cli.runtime import (
    gateway_config,
    open_broker,
    open_database,
    run,
    stop_signal,
)
from gateway.observe.logs import announce
from gateway.pipeline.door_worker import Gateway
from gateway.settings import Settings
from gateway.store.partition_leases import PartitionCountMismatch, WorkerIdInUse


@contextlib.asynccontextmanager
async def worker_status(settings: Settings, gateway: Gateway) -> AsyncIterator[None]:
    """The worker's /metrics, /healthz, /readyz on CAMPUSGATE_METRICS_PORT (0: none)."""
    if not settings.metrics_port:
        yield
        return
    from gateway.pipeline.telemetry import start_status_server

    try:
        server = await start_status_server(
            gateway, settings.metrics_host, settings.metrics_port, token=settings.metrics_token
        )
    except OSError as exc:
        raise click.ClickException(
            f"the worker's metrics server cannot listen on {settings.metrics_host}:"
            f"{settings.metrics_port} ({exc.strerror or exc}); set CAMPUSGATE_METRICS_PORT "
            "(one port per worker on a host; 0 turns it off)"
        ) from None
    try:
        announce(f"worker metrics on {server.url}/metrics", settings.log_format)
        yield
    finally:
        await server.stop()


async def serve_gateway(
    ctx: click.Context, *, client_id: str, partitioned: bool, migrate: bool, api: bool = False
) -> None:
    settings = settings_of(ctx)
    dsn = await open_database(settings, migrate=migrate)
    sock = api_socket(settings, any_port_if_busy=False) if api else None
    broker = await open_broker(settings)
    config = gateway_config(
        settings, dsn, broker.address, client_id=client_id, partitioned=partitioned
    )
    gateway = Gateway(replace(config, osdp_allow_insecure=settings.osdp_allow_insecure))
    api_process = ApiProcess(settings, dsn, sock) if sock is not None else None
    try:
        async with stop_signal() as stop, worker_status(settings, gateway):
            if api_process is not None:
                # The API boots in its own process first, so "running" means all is up and
                # nothing is left to start beside the doors' first decisions.
                try:
                    await api_process.start()
                except ApiProcessError as exc:
                    raise click.ClickException(str(exc)) from None
                assert sock is not None
                announce(
                    f"console and API on {console_url(sock)} (OpenAPI at {console_url(sock)}docs), "
                    f"process {api_process.pid}",
                    settings.log_format,
                )
            try:
                await gateway.start()
            except MqttError as exc:
                raise click.ClickException(
                    f"{exc}; check CAMPUSGATE_MQTT_URL and that the broker is running"
                ) from None
            except ValueError as exc:  # configuration the gateway could only check at start
                raise click.ClickException(str(exc)) from None
            except PartitionCountMismatch as exc:
                raise click.ClickException(
                    f"CAMPUSGATE_PARTITIONS is {exc.configured} but this campus was set up with "
                    f"{exc.recorded} partitions (recorded in the database by its first worker); "
                    f"set CAMPUSGATE_PARTITIONS={exc.recorded} on every worker. Changing the "
                    "count needs every worker stopped first (docs/operations.md, Scale-out)"
                ) from None
            except WorkerIdInUse as exc:
                raise click.ClickException(
                    f"worker id {exc.worker} is in use by a live worker (host {exc.host}, "
                    f"process {exc.pid}); give each worker its own --worker-id, or leave it "
                    "out for a unique one"
                ) from None
            announce(
                f"campusgate gateway {client_id} running; Ctrl-C stops it", settings.log_format
            )
            if api_process is None:
                await stop.wait()
                return
            stopped = asyncio.create_task(stop.wait())
            api_ended = asyncio.create_task(api_process.ended())
            await asyncio.wait({stopped, api_ended}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if api_ended.done() and not stop.is_set():
                raise click.ClickException(
                    f"the API process ended unexpectedly (exit code {api_ended.result()}); "
                    "campusgate serve stops the gateway too: see the log above, then start it again"
                )
            api_ended.cancel()
    finally:
        if api_process is not None:
            await api_process.stop()
        await gateway.stop()
        await broker.close()
        if sock is not None:
            sock.close()


@click.command()
@click.option(
    "--client-id",
    default="campusgate-gateway",
    show_default=True,
    help="MQTT client id (keeps the session)",
)
@click.option(
    "--partitioned",
    is_flag=True,
    help="decide only the partitions this process holds the lease of, beside `campusgate "
    "worker` processes (README, Scale-out); --client-id is then the worker id",
)
@click.pass_context
def command(ctx: click.Context, client_id: str, partitioned: bool) -> None:
    """Run the gateway and the HTTP API / console (migrations first)."""
    if partitioned and client_id == "campusgate-gateway":
        client_id = default_worker_id()
    run(
        lambda: serve_gateway(
            ctx, client_id=client_id, partitioned=partitioned, migrate=True, api=True
        )
    )


def default_worker_id() -> str:
    """Unique per process: two workers on one host must not share an id (issue 14)."""
    return f"campusgate-worker-{socket.gethostname()}-{os.getpid()}"
