"""Simulated serial card readers on pseudo-terminals: RDM6300, Wiegand converter, OSDP.

A :class:`PtyPort` is the cable: a pseudo-terminal put in raw mode (without it
the line discipline would eat ETX as ^C and turn CR into LF), exposed at a
stable path (a symlink, as udev's ``/dev/serial/by-id`` gives a real reader)
so that unplugging and replugging lands on the same configured port.

The frames are built here from the formats' rules, not with the gateway's
codecs, so one bug cannot hide on both sides (ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tty
from functools import reduce
from pathlib import Path

import osdp


class PtyPort:
    """A pseudo-terminal reader port at ``path``; ``unplug``/``plug`` as with a USB cable."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.master: int | None = None
        self._slave: int | None = None
        self.plug()

    def plug(self) -> None:
        if self.master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self._slave = master, slave
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self.master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = None

    def write(self, data: bytes) -> int:
        if self.master is None:
            return 0
        try:
            return os.write(self.master, data)
        except (BlockingIOError, OSError):
            return 0

    def read(self, max_bytes: int) -> bytes:
        if self.master is None:
            return b""
        try:
            return os.read(self.master, max_bytes)
        except (BlockingIOError, OSError):
            return b""


class Rdm6300Reader:
    """An RDM6300 module: one ASCII frame per EM4100 card held to it."""

    def __init__(self, port: PtyPort) -> None:
        self.port = port

    @staticmethod
    def frame(tag_hex: str) -> bytes:
        tag = bytes.fromhex(tag_hex)
        if len(tag) != 5:
            raise ValueError("an EM4100 tag has 5 bytes")
        check = reduce(lambda a, b: a ^ b, tag)
        return b"\x02" + f"{tag_hex.upper()}{check:02X}".encode() + b"\x03"

    def present(self, tag_hex: str) -> None:
        self.port.write(self.frame(tag_hex))


class WiegandConverter:
    """A Wiegand reader behind a Wiegand-to-serial converter printing ``W26:``/``W34:`` lines."""

    def __init__(self, port: PtyPort) -> None:
        self.port = port

    @staticmethod
    def frame(facility: int, number: int, bits: int = 26) -> bytes:
        fc_bits = 8 if bits == 26 else 16
        data = f"{facility:0{fc_bits}b}{number:016b}"
        half = len(data) // 2
        even = "1" if data[:half].count("1") % 2 else "0"
        odd = "0" if data[half:].count("1") % 2 else "1"
        digits = 7 if bits == 26 else 9
        return f"W{bits}:{int(even + data + odd, 2):0{digits}X}\r\n".encode()

    def present(self, facility: int, number: int, bits: int = 26) -> None:
        self.port.write(self.frame(facility, number, bits))


class _PtyChannel(osdp.Channel):
    def __init__(self, port: PtyPort) -> None:
        super().__init__()
        self._port = port

    def read(self, max_bytes: int) -> bytes:
        return self._port.read(max_bytes)

    def write(self, buf: bytes) -> int:
        return self._port.write(buf)

    def flush(self) -> None:
        pass


class OsdpReader:
    """An OSDP reader (libosdp peripheral device) with an LED, a buzzer and a lock relay.

    ``commands`` collects what the control panel sent (libosdp command dicts);
    ``led``, ``beeps`` and ``relay_ms`` show the last of each.
    """

    def __init__(self, port: PtyPort, *, scbk: bytes | None = None, address: int = 0) -> None:
        self.port = port
        self.commands: list[dict] = []
        self._lock = threading.Lock()
        capabilities = osdp.PDCapabilities(
            [
                (osdp.Capability.OutputControl, 1, 1),
                (osdp.Capability.LEDControl, 1, 1),
                (osdp.Capability.AudibleControl, 1, 1),
                (osdp.Capability.CommunicationSecurity, 1, 1),
            ]
        )
        info = osdp.PDInfo(address, _PtyChannel(port), scbk=scbk, name="sim-reader")
        self._pd = osdp.PeripheralDevice(
            info, capabilities, log_level=osdp.LogLevel.Error, command_handler=self._command
        )
        self._started = False

    def _command(self, command: dict) -> tuple[int, None]:  # libosdp's thread
        with self._lock:
            self.commands.append(dict(command))
        return 0, None

    def start(self) -> None:
        self._pd.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._pd.stop()
            self._started = False

    @property
    def online(self) -> bool:
        return bool(self._pd.is_online())

    @property
    def secure(self) -> bool:
        return bool(self._pd.is_sc_active())

    def present_uid(self, uid_hex: str) -> None:
        """A card whose UID (4, 5, 7 or 10 bytes) the reader reports as raw bits."""
        data = bytes.fromhex(uid_hex)
        self.present_raw(osdp.CardFormat.Unspecified, len(data) * 8, data)

    def present_wiegand(self, facility: int, number: int, bits: int = 26) -> None:
        line = WiegandConverter.frame(facility, number, bits)
        value = int(line[4:].strip(), 16)
        size = (bits + 7) // 8
        data = (value << (size * 8 - bits)).to_bytes(size, "big")
        self.present_raw(osdp.CardFormat.Wiegand, bits, data)

    def present_raw(self, fmt: int, length: int, data: bytes) -> None:
        """Report card data as given: libosdp format code, bit count and packed bits."""
        event = {
            "event": osdp.Event.CardRead,
            "reader_no": 0,
            "direction": 0,
            "format": fmt,
            "length": length,
            "data": data,
        }
        self._pd.submit_event(event)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.commands)

    def wait_commands(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Block until at least ``count`` commands arrived (or the timeout); return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            commands = self.snapshot()
            if len(commands) >= count:
                return commands
            time.sleep(0.02)
        return self.snapshot()
