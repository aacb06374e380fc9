"""Keep the broker's accounts in step with the roster: regenerate and reload on a change.

Listens on the roster NOTIFY channel; a change to `devices` (or a lost listener, after
which nothing is known) re-reads the MQTT device ids, and only when that set changed
rewrites the files and signals the broker. A safety check runs every `check_every_s`
in case a notification was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import asyncpg

from gateway.services.broker_credentials import (
    CredentialsError,
    Outcome,
    reload_broker,
    write_credentials,
)
from gateway.store.broker_devices import ROSTER_CHANNEL, mqtt_device_ids
from gateway.store.db import DATABASE_ERRORS

_LOGGER = logging.getLogger(__name__)

DEBOUNCE_S = 0.2


async def watch_roster(
    dsn: str,
    out: Path,
    *,
    prefix: str,
    pid_file: Path | None,
    sim_account: bool = False,
    stop: asyncio.Event,
    check_every_s: float = 60.0,
    on_update: Callable[[Outcome], None] | None = None,
) -> None:
    """Run until `stop` is set; every device set change rewrites `out` and reloads."""
    wake = asyncio.Event()
    current: list[str] | None = None

    def notified(conn: object, pid: int, channel: str, payload: str) -> None:
        if payload in ("devices", "*"):
            wake.set()

    while not stop.is_set():
        listener: asyncpg.Connection | None = None
        try:
            listener = await asyncpg.connect(dsn, timeout=10)
            await listener.add_listener(ROSTER_CHANNEL, notified)
            listener.add_termination_listener(lambda conn: wake.set())
            while not stop.is_set() and not listener.is_closed():
                ids = await mqtt_device_ids(listener)
                if ids != current:
                    updated = await _update(out, ids, prefix, pid_file, sim_account)
                    current = ids if updated is not None else None
                    if updated is not None and on_update is not None:
                        on_update(updated)
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=check_every_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in (waiter, stopper):
                    task.cancel()
                wake.clear()
                await asyncio.sleep(DEBOUNCE_S)  # one rewrite for a burst of statements
        except DATABASE_ERRORS as exc:
            _LOGGER.error("broker accounts: database unavailable (%s); retrying in 2 s", exc)
            current = None  # changes made meanwhile are unknown
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()


async def _update(
    out: Path, ids: list[str], prefix: str, pid_file: Path | None, sim_account: bool
) -> Outcome | None:
    """Rewrite the files and reload the broker; None (logged) when that failed."""
    try:
        outcome = await asyncio.to_thread(
            write_credentials, out, ids, prefix=prefix, sim_account=sim_account
        )
        if pid_file is not None:
            reload_broker(pid_file)
            outcome.reloaded = True
    except CredentialsError as exc:
        _LOGGER.error("broker accounts not updated: %s; retrying at the next check", exc)
        return None
    _LOGGER.info(
        "broker accounts: %d devices (+%d -%d)%s",
        outcome.devices,
        len(outcome.added),
        len(outcome.removed),
        ", broker reloaded" if outcome.reloaded else "",
    )
    for device_id, reason in outcome.refused.items():
        _LOGGER.warning("device %s gets no broker account: %s", device_id, reason)
    for device_id, reason in outcome.nats_skipped.items():
        _LOGGER.warning("NATS accounts: %s: %s", device_id, reason)
    return outcome
