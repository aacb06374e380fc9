"""An OSDP control panel (libosdp) for one reader on one serial port.

libosdp runs the OSDP state machine, secure channel included, in its own thread
and moves bytes through a :class:`osdp.Channel`; the channel here is a pyserial
port (``serial.serial_for_url``) that is reopened, at most every
``REOPEN_S``, after it fails, so an unplugged reader comes back by itself. Card
reports and online/offline changes are handed to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
import threading
import time
from collections.abc import Callable

import osdp
import serial

_LOGGER = logging.getLogger(__name__)

REOPEN_S = 0.5
WRITE_TIMEOUT_S = 0.5
CLOSE_WAIT_S = 2.0
STATUS_POLL_S = 0.2
# libosdp waits minutes before it polls an offline reader again; restart the reader's state
# machine this often instead, so a replugged reader is back within seconds.
RETRY_OFFLINE_S = 2.0


class SerialChannel(osdp.Channel):
    """libosdp's byte stream over a pyserial port; never raises into libosdp."""

    def __init__(self, url: str, baudrate: int) -> None:
        super().__init__()
        self._url = url
        self._baudrate = baudrate
        self._port: serial.SerialBase | None = None
        self._next_open = 0.0
        self._lock = threading.Lock()

    def _ensure(self) -> serial.SerialBase | None:
        if self._port is None and time.monotonic() >= self._next_open:
            try:
                # A write must never block: a pseudo-terminal or a USB adapter whose other
                # end is gone can otherwise hold libosdp's thread (and this lock) forever.
                self._port = serial.serial_for_url(
                    self._url, baudrate=self._baudrate, timeout=0, write_timeout=WRITE_TIMEOUT_S
                )
            except (serial.SerialException, OSError, ValueError):
                self._next_open = time.monotonic() + REOPEN_S
        return self._port

    def _fail(self) -> None:
        port, self._port = self._port, None
        self._next_open = time.monotonic() + REOPEN_S
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def read(self, max_bytes: int) -> bytes:
        with self._lock:
            port = self._ensure()
            if port is None:
                return b""
            try:
                return port.read(max_bytes)
            except (serial.SerialException, OSError):
                self._fail()
                return b""

    def write(self, buf: bytes) -> int:
        with self._lock:
            port = self._ensure()
            if port is None:
                return 0
            try:
                return port.write(buf) or 0
            except serial.SerialTimeoutException:
                return 0
            except (serial.SerialException, OSError):
                self._fail()
                return 0

    def flush(self) -> None:
        with self._lock:
            if self._port is not None:
                # tcdrain on a pty whose other side is gone raises termios.error, which is
                # no OSError: uncaught, it printed a traceback from libosdp's thread.
                with contextlib.suppress(serial.SerialException, OSError, termios.error):
                    self._port.flush()

    def close(self) -> None:
        # Closing must not wait on a stuck I/O call: after a while, close anyway.
        locked = self._lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self._fail()
        finally:
            if locked:
                self._lock.release()


class OsdpPanel:
    """Control panel for the reader at ``address`` on ``url``; ``scbk`` turns on the
    secure channel (and enforces it)."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        address: int = 0,
        scbk: bytes | None = None,
        on_card: Callable[[int, int, bytes], None],
        on_online: Callable[[bool], None] | None = None,
        log_level: int = osdp.LogLevel.Error,
    ) -> None:
        self.url = url
        self.address = address
        self._on_card = on_card
        self._on_online = on_online
        self._channel = SerialChannel(url, baudrate)
        flags = [osdp.LibFlag.EnforceSecure] if scbk else []
        info = osdp.PDInfo(address, self._channel, scbk=scbk, name=url[-20:], flags=flags)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cp = osdp.ControlPanel([info], log_level=log_level, event_handler=self._on_event)
        self._online: bool | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def online(self) -> bool:
        return bool(self._online)

    @property
    def secure(self) -> bool:
        return self._cp.is_sc_active(self.address)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._cp.start()
        self._task = asyncio.create_task(self._watch(), name=f"osdp {self.url}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._cp.stop)
        self._channel.close()

    def submit(self, command: dict[str, object]) -> bool:
        """Queue a libosdp command dict for the reader; False if it was refused."""
        return bool(self._cp.submit_command(self.address, dict(command)))

    def _restart(self) -> None:
        self._cp.disable_pd(self.address)
        self._cp.enable_pd(self.address)

    def _on_event(self, _pd: int, event: dict) -> int:  # libosdp's thread
        if event.get("event") == osdp.Event.CardRead and self._loop is not None:
            data = bytes(event.get("data") or b"")
            self._loop.call_soon_threadsafe(
                self._on_card, int(event.get("format", 0)), int(event.get("length", 0)), data
            )
        return 0

    async def _watch(self) -> None:
        offline_since = time.monotonic()
        while True:
            online = await asyncio.to_thread(self._cp.is_online, self.address)
            if online:
                offline_since = time.monotonic()
            elif time.monotonic() - offline_since > RETRY_OFFLINE_S:
                offline_since = time.monotonic()
                await asyncio.to_thread(self._restart)
            if online is not self._online:
                self._online = online
                _LOGGER.info(
                    "osdp %s@%d: %s", self.url, self.address, "online" if online else "offline"
                )
                if self._on_online is not None:
                    self._on_online(online)
            await asyncio.sleep(STATUS_POLL_S)
