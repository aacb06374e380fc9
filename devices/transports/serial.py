"""Bytes in and out of one serial port, reopened with backoff when it goes away.

Ports open through ``serial.serial_for_url``, so a device path (``/dev/ttyUSB0``,
a pseudo-terminal), ``loop://`` and ``socket://host:port`` all work. Reads run in
the link's own thread with a short timeout (pyserial is blocking; a thread per
port keeps many readers from queueing behind the loop's default executor);
what they return is handed to the event loop. A read or write error, or a port that cannot be
opened, is "disconnected": ``on_connection(False)`` is called once, and the port
is reopened after a backoff that doubles up to ``max_backoff_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import serial

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_TIMEOUT_S = 0.1
MAX_READ = 4096


class SerialLink:
    """One serial port; ``run()`` until ``close()``."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        on_data: Callable[[bytes], None],
        on_connection: Callable[[bool], None] | None = None,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.url = url
        self._baudrate = baudrate
        self._on_data = on_data
        self._on_connection = on_connection
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._port: serial.SerialBase | None = None
        self._connected: bool | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serial {url}")

    @property
    def connected(self) -> bool:
        return bool(self._connected)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"serial {self.url}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=False)

    def write(self, data: bytes) -> bool:
        """Send bytes now; False when the port is not open or the write failed."""
        port = self._port
        if port is None:
            return False
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            _LOGGER.warning("serial %s: write failed: %s", self.url, exc)
            return False
        return True

    async def run(self) -> None:
        backoff = self._min_backoff_s
        while not self._closing:
            try:
                self._port = await self._in_thread(self._open)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._set_connected(False, str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = self._min_backoff_s
            self._set_connected(True, "open")
            try:
                while not self._closing:
                    data = await self._in_thread(self._read)
                    if data:
                        self._on_data(data)
            except (serial.SerialException, OSError) as exc:
                self._set_connected(False, str(exc))
            finally:
                port, self._port = self._port, None
                if port is not None:
                    with contextlib.suppress(serial.SerialException, OSError):
                        port.close()

    async def _in_thread(self, call: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    def _open(self) -> serial.SerialBase:
        return serial.serial_for_url(
            self.url, baudrate=self._baudrate, timeout=READ_TIMEOUT_S, write_timeout=READ_TIMEOUT_S
        )

    def _read(self) -> bytes:
        port = self._port
        if port is None:
            return b""
        return port.read(min(max(port.in_waiting, 1), MAX_READ))

    def _set_connected(self, connected: bool, why: str) -> None:
        if self._connected is connected:
            return
        self._connected = connected
        log = _LOGGER.info if connected else _LOGGER.warning
        log("serial %s: %s (%s)", self.url, "connected" if connected else "disconnected", why)
        if self._on_connection is not None:
            self._on_connection(connected)
