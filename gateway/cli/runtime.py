"""Composition helpers shared by serve, worker, demo and bench: database, broker, gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.thermal_estimator import Calibration
from devices.transports.mqtt import BrokerAddress, Protocol
from gateway.cli.local_broker import LocalAmqtt, LocalMosquitto, MosquittoError, find_mosquitto
from gateway.pipeline.allowlists import AllowlistConfig
from gateway.pipeline.door_worker import GatewayConfig, Partitioning
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.signing import (
    PublicKeyInfo,
    SigningKeyError,
    default_key_file,
    load_or_create_key,
)
from gateway.pipeline.spool import DEFAULT_BOUND, spool_path
from gateway.pipeline.thermal_frames import parse_calibrations
from gateway.services.jobs import campus_jobs
from gateway.services.scheduler import Scheduler
from gateway.settings import Settings
from gateway.store.db import DATABASE_ERRORS, create_pool, redact_dsn
from gateway.store.embedded import EmbeddedDatabaseError, resolve_database_url
from gateway.store.migrate import apply_migrations

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Broker:
    address: BrokerAddress
    # The demo's own broker when no URL is configured: a LocalMosquitto or a LocalAmqtt.
    embedded: LocalMosquitto | LocalAmqtt | None = None

    @property
    def kind(self) -> str:
        if isinstance(self.embedded, LocalMosquitto):
            return f"mosquitto on {self.address.host}:{self.address.port}"
        if isinstance(self.embedded, LocalAmqtt):
            return f"amqtt (in-process, MQTT 3.1.1) on {self.address.host}:{self.address.port}"
        return str(self.address)

    @property
    def enforces_identities(self) -> bool:
        """The demo's own Mosquitto, started with per-device passwords and an ACL."""
        return isinstance(self.embedded, LocalMosquitto) and self.embedded.credentials is not None

    @property
    def identity_note(self) -> str:
        """What the broker does about device identities, said plainly for the demo."""
        if isinstance(self.embedded, LocalAmqtt):
            return (
                "broker: in-process amqtt cannot enforce device identities. NOT enforced "
                "here: any client connects without a password, and any client may publish "
                "a card event in any door's name or write any door's commands (no ACL). "
                "Commands are still signed and the terminals verify them. Install mosquitto "
                "for per-device passwords and an ACL"
            )
        if isinstance(self.embedded, LocalMosquitto):
            if self.embedded.credentials is not None:
                return "broker: mosquitto with per-device passwords and ACL"
            return (
                "broker: mosquitto accepts anonymous clients here (no per-device passwords "
                "in the demo); production: deploy/mosquitto/mosquitto-secure.conf and "
                "`campusgate devices credentials`"
            )
        return "broker: the configured CAMPUSGATE_MQTT_URL (its own accounts and ACL apply)"

    async def close(self) -> None:
        if isinstance(self.embedded, LocalMosquitto):
            await asyncio.to_thread(self.embedded.stop)
        elif isinstance(self.embedded, LocalAmqtt):
            await self.embedded.stop()


async def open_database(settings: Settings, *, migrate: bool = True) -> str:
    """The DSN to use, with the schema brought up to date; a one-line error when unreachable."""
    try:
        dsn = await asyncio.to_thread(resolve_database_url, settings)
    except EmbeddedDatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    if migrate:
        try:
            applied = await apply_migrations(dsn)
        except DATABASE_ERRORS as exc:
            raise click.ClickException(
                f"cannot use the database at {redact_dsn(dsn)}: {exc}; check CAMPUSGATE_DATABASE_URL and that PostgreSQL is running"
            ) from None
        if applied:
            _LOGGER.info("applied migrations: %s", ", ".join(applied))
    return dsn


async def open_broker(
    settings: Settings,
    *,
    port: int | None = None,
    local: str = "auto",
    credentials: Path | None = None,
) -> Broker:
    """The configured broker; else Mosquitto on a free port of 127.0.0.1 when the binary is
    installed (config and log under the data dir), else an in-process amqtt broker.

    `local` picks that broker: "auto", "mosquitto" (an error when not installed) or "amqtt".
    `credentials`: the passwd and acl a local Mosquitto enforces (`write_credentials`).
    """
    if settings.mqtt_url:
        try:
            return Broker(BrokerAddress.parse(settings.mqtt_url, **settings.mqtt_options()))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    binary = find_mosquitto() if local in ("auto", "mosquitto") else None
    if binary is None and local == "mosquitto":
        raise click.ClickException(
            "no mosquitto binary found: install it (Debian: apt-get install mosquitto) "
            "or use --broker amqtt"
        )
    if binary is not None:
        folder = settings.data_dir.expanduser() / "mosquitto"
        mosquitto = LocalMosquitto(binary, folder, port, credentials=credentials)
        try:
            await asyncio.to_thread(mosquitto.start)
        except (MosquittoError, OSError) as exc:
            if local == "mosquitto":
                raise click.ClickException(f"cannot start {binary}: {exc}") from None
            _LOGGER.warning("cannot start %s (%s); using the in-process amqtt broker", binary, exc)
        else:
            _LOGGER.info("MQTT broker: %s on 127.0.0.1:%d", binary, mosquitto.port)
            return Broker(BrokerAddress.parse(f"mqtt://127.0.0.1:{mosquitto.port}"), mosquitto)
    amqtt = LocalAmqtt(port)
    await amqtt.start()
    _LOGGER.info("embedded MQTT broker (amqtt, MQTT 3.1.1) on 127.0.0.1:%d", amqtt.port)
    return Broker(
        BrokerAddress.parse(f"mqtt://127.0.0.1:{amqtt.port}", protocol=Protocol.V311), amqtt
    )


def gateway_config(
    settings: Settings,
    dsn: str,
    broker: BrokerAddress,
    *,
    client_id: str,
    partitioned: bool = False,
) -> GatewayConfig:
    return GatewayConfig(
        database_url=dsn,
        broker=broker,
        topic_prefix=settings.topic_prefix,
        policy=DoorPolicy(
            tz=settings.tz,
            fever_threshold_c=settings.fever_threshold_c,
            temperature_window_s=settings.temperature_window_s,
            max_stay_h=settings.trace_max_stay_h,
            thermal_calibrations=_calibrations(settings),
        ),
        client_id=client_id,
        partitioning=Partitioning(
            partitions=settings.partitions,
            lease_s=settings.partition_lease_s,
            client_prefix=settings.partition_client_prefix,
        )
        if partitioned
        else None,
        osdp_keys=settings.osdp_keys,
        signing_key=command_signing_key(settings),
        allowlists=None
        if not settings.publish_allowlists
        else AllowlistConfig(
            tz=settings.tz,
            fever_threshold_c=settings.fever_threshold_c,
            days=settings.allowlist_days,
            emergency_units=frozenset(
                unit.strip() for unit in settings.offline_emergency_units.split(",") if unit.strip()
            ),
        ),
        spool_path=spool_path(settings.data_dir.expanduser(), client_id)
        if settings.spool_max_items
        else None,
        spool_bound=settings.spool_max_items or DEFAULT_BOUND,
    )


def signing_key_file(settings: Settings) -> Path:
    return settings.signing_key_file or default_key_file(settings.data_dir)


def command_signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The key that signs commands, made on first start; None when signing is turned off."""
    if not settings.sign_commands:
        _LOGGER.warning(
            "CAMPUSGATE_SIGN_COMMANDS is off: commands go unsigned, and terminals that "
            "verify will refuse them"
        )
        return None
    path = signing_key_file(settings)
    try:
        key, made = load_or_create_key(path)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    info = PublicKeyInfo.of(key)
    if made:
        _LOGGER.warning(
            "made a new command-signing key %s (kid %s): give terminals its public key "
            "(campusgate keys show)",
            path,
            info.kid,
        )
    else:
        _LOGGER.info("commands signed with %s (kid %s)", path, info.kid)
    return key


def _calibrations(settings: Settings) -> dict[str, Calibration]:
    try:
        return parse_calibrations(settings.thermal_calibrations)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.asynccontextmanager
async def campus_scheduler(settings: Settings, dsn: str) -> AsyncIterator[Scheduler]:
    """The campus's scheduled jobs (expiry, re-evaluation, reports, retention) while inside."""
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        jobs = campus_jobs(pool, settings)
    except ValueError as exc:  # a setting only the jobs can check, e.g. report recipients
        await pool.close()
        raise click.ClickException(str(exc)) from None
    scheduler = Scheduler(jobs, settings.tz)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()
        await pool.close()


@contextlib.asynccontextmanager
async def stop_signal() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM, for a clean Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(main: Callable[[], Awaitable[T]]) -> T | None:
    """Run an async command and return its result; Ctrl-C ends it cleanly (None)."""
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())  # type: ignore[arg-type]
    return None
