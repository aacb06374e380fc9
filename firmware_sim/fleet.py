"""Many simulated terminals in one process, on one event loop."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from devices.transports.mqtt import BrokerAddress, Message, MqttClient
from firmware_sim.terminal import DEFAULT_PREFIX, DecisionHook, SimTerminal

_LOGGER = logging.getLogger(__name__)


def load_device_secrets(path: Path) -> dict[str, str]:
    """`{device_id: password}` from the `device-secrets.csv` of `campusgate devices
    credentials` (what a factory would flash into each terminal)."""
    try:
        with path.open(newline="") as src:
            return {row["device_id"]: row["password"] for row in csv.DictReader(src)}
    except (OSError, KeyError) as exc:
        raise ValueError(
            f"cannot read device passwords from {path}: {exc!r}; expected the"
            " device-secrets.csv written by `campusgate devices credentials`"
        ) from None


class Fleet:
    """A set of `SimTerminal`s, one MQTT client each, connected concurrently.

    `fleet["term-dorm-1-main"]` is one terminal; `problems()` gathers every
    terminal's deviations from "one final decision per card event".
    """

    def __init__(
        self,
        broker: BrokerAddress | str,
        device_ids: Iterable[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        connect_concurrency: int = 64,
        on_decision: DecisionHook | None = None,
        passwords: Mapping[str, str] | None = None,
        cert_dir: Path | None = None,
        **terminal_options: Any,
    ) -> None:
        """`passwords`: each device's own broker password (`load_device_secrets`);
        `cert_dir`: where each device's `{id}.crt` and `{id}.key` are (`campusgate certs
        device`). Without them every terminal uses the URL's password."""
        self.address = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
        self.prefix = prefix
        self._connect_concurrency = connect_concurrency
        self._passwords = dict(passwords or {})
        self._cert_dir = cert_dir
        self.terminals: dict[str, SimTerminal] = {
            device_id: SimTerminal(
                self.address,
                device_id,
                prefix=prefix,
                on_decision=on_decision,
                **self.identity(device_id),
                **terminal_options,
            )
            for device_id in device_ids
        }

    def identity(self, device_id: str) -> dict[str, Any]:
        """The login options of one device's terminal (its password or certificate)."""
        found: dict[str, Any] = {}
        if device_id in self._passwords:
            found["password"] = self._passwords[device_id]
        if self._cert_dir is not None:
            found["cert_file"] = str(self._cert_dir / f"{device_id}.crt")
            found["key_file"] = str(self._cert_dir / f"{device_id}.key")
        return found

    @property
    def has_identities(self) -> bool:
        """Each terminal logs in as its own device (password or certificate): a broker that
        enforces identities refuses a device it has no account for."""
        return bool(self._passwords) or self._cert_dir is not None

    def __getitem__(self, device_id: str) -> SimTerminal:
        return self.terminals[device_id]

    def get(self, device_id: str) -> SimTerminal | None:
        return self.terminals.get(device_id)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self.terminals

    def __iter__(self) -> Iterator[SimTerminal]:
        return iter(self.terminals.values())

    def __len__(self) -> int:
        return len(self.terminals)

    def add(self, device_id: str, **terminal_options: Any) -> SimTerminal:
        """Add a terminal (not started), e.g. one the gateway does not know."""
        options = {**self.identity(device_id), **terminal_options}
        terminal = SimTerminal(self.address, device_id, prefix=self.prefix, **options)
        self.terminals[device_id] = terminal
        return terminal

    async def start(self, timeout: float = 30.0) -> None:
        """Connect every terminal; at most `connect_concurrency` handshakes at once."""
        gate = asyncio.Semaphore(self._connect_concurrency)

        async def one(terminal: SimTerminal) -> None:
            async with gate:
                await terminal.start(timeout)

        results = await asyncio.gather(*(one(t) for t in self), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    async def stop(self) -> None:
        await asyncio.gather(*(t.stop() for t in self), return_exceptions=True)

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def problems(self) -> list[str]:
        return [p for terminal in self for p in terminal.problems()]

    def undecided(self) -> dict[str, list[str]]:
        """device id -> card events without a final decision yet."""
        found = {t.device_id: t.undecided() for t in self}
        return {device: ids for device, ids in found.items() if ids}


class AlertWatch:
    """A console-like subscriber to `P/alerts/#` that keeps what it received.

    `wait_for(kind, device=...)` returns the first matching alert received since
    `mark()` (or since start).
    """

    def __init__(self, broker: BrokerAddress | str, *, prefix: str = DEFAULT_PREFIX) -> None:
        address = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
        self.prefix = prefix
        self.alerts: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._client = MqttClient(
            address,
            client_id=f"sim-alert-watch-{id(self):x}",
            on_messages=self._handle,
            subscriptions=[(f"{prefix}/alerts/#", 1)],
        )

    async def start(self, timeout: float = 10.0) -> None:
        await self._client.connect(timeout)

    async def stop(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AlertWatch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _handle(self, batch: Sequence[Message]) -> None:
        for message in batch:
            try:
                alert = json.loads(message.payload)
            except (ValueError, UnicodeDecodeError):
                _LOGGER.warning("alert on %s is not JSON", message.topic)
                continue
            if isinstance(alert, dict):
                alert.setdefault("kind", message.topic.rsplit("/", 1)[-1])
                self.alerts.append(alert)
        self._changed.set()

    def mark(self) -> int:
        """A position to search from in `wait_for`."""
        return len(self.alerts)

    def matching(
        self, kind: str, *, device: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts[since:]
            if a.get("kind") == kind and (device is None or a.get("device") == device)
        ]

    async def wait_for(
        self, kind: str, *, device: str | None = None, since: int = 0, timeout: float = 5.0
    ) -> dict[str, Any] | None:
        """The first alert of `kind` (from `device`) after `since`, or None after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.matching(kind, device=device, since=since)
            if found:
                return found[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None
