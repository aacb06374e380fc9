"""A broker of the demo's own when no CAMPUSGATE_MQTT_URL is set: Mosquitto if installed, else amqtt.

amqtt (pure Python, always installed) waits a fixed 5 s for each PUBACK it is owed
and logs a traceback when one is late. The gateway acknowledges an event only once
its decision is durable, and holds a card event until its temperature pairs (up to
CAMPUSGATE_TEMPERATURE_WINDOW_S, 15 s), so amqtt complains about every card that
waits for a reading longer than 5 s. The message was delivered all the same; the
timeout only ends amqtt's wait. Mosquitto has no such timeout and, with the
settings of deploy/mosquitto/mosquitto.conf (no inflight window), keeps up with a
gateway that holds acknowledgements; so the demo starts it on a free port when the
binary is there and falls back to amqtt (with those warnings counted, not printed)
when it is not.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import getpass
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

# deploy/mosquitto/mosquitto.conf, for a private listener and no persistence file.
MOSQUITTO_SETTINGS = """\
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
max_queued_bytes 0
set_tcp_nodelay true
"""
START_TIMEOUT_S = 10.0


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or where Debian puts it, if installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    debian = "/usr/sbin/mosquitto"
    return debian if os.access(debian, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MosquittoError(RuntimeError):
    """The mosquitto binary is there but did not start."""


class LocalMosquitto:
    """A mosquitto process on 127.0.0.1 with a config file and a log in `folder`."""

    def __init__(
        self,
        binary: str,
        folder: Path,
        port: int | None = None,
        *,
        credentials: Path | None = None,
    ) -> None:
        """`credentials`: a directory made by `write_credentials` (passwd, acl); when given
        the listener refuses anonymous clients and applies the per-device ACL."""
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.credentials = credentials
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "mosquitto.log"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\n{self._settings()}")
        with self.log_path.open("ab") as log:
            # The log goes to a file: an unread pipe would fill up and stall the broker.
            # Its own session: a Ctrl-C at the terminal reaches the demo only, which stops
            # the gateway first and the broker last (and at exit, whatever happens).
            self.process = subprocess.Popen(
                [self.binary, "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-500:].strip()
                raise MosquittoError(f"mosquitto exited with {self.process.returncode}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on port {self.port} within 10 s")

    def _settings(self) -> str:
        if self.credentials is None:
            return MOSQUITTO_SETTINGS
        auth = (
            "allow_anonymous false\n"
            f"password_file {self.credentials / 'passwd'}\n"
            f"acl_file {self.credentials / 'acl'}\n"
            # Started as root, Mosquitto would switch to user `mosquitto`, which may not
            # read the private files: it runs as whoever runs the demo.
            f"user {getpass.getuser()}\n"
        )
        return MOSQUITTO_SETTINGS.replace("allow_anonymous true\n", auth)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class _PubackTimeouts(logging.Filter):
    """Counts amqtt's "Timeout waiting for PUBACK" reports instead of letting them print."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        text = str(error) if error is not None else record.getMessage()
        if "Timeout waiting for PUBACK" in text:
            # amqtt reports each twice: a warning, then the failed task's traceback.
            self.count += error is not None
            return False
        return True


class LocalAmqtt:
    """amqtt in this process, its PUBACK timeouts counted (see the module's docstring)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.broker: object | None = None
        self.puback_timeouts = _PubackTimeouts()

    async def start(self) -> None:
        from amqtt.broker import Broker as AmqttBroker

        for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
            logging.getLogger(name).addFilter(self.puback_timeouts)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = AmqttBroker(config)
        await broker.start()
        self.broker = broker

    async def stop(self) -> None:
        if self.broker is not None:
            # amqtt raises assorted errors while closing sessions
            with contextlib.suppress(Exception):
                await self.broker.shutdown()  # type: ignore[attr-defined]
        for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
            logging.getLogger(name).removeFilter(self.puback_timeouts)
        if self.puback_timeouts.count:
            _LOGGER.info(
                "amqtt gave up waiting for %d PUBACKs the gateway held (cards waiting for "
                "a temperature); install mosquitto for a broker without that timeout",
                self.puback_timeouts.count,
            )


async def start_mosquitto(binary: str, folder: Path) -> LocalMosquitto:
    broker = LocalMosquitto(binary, folder)
    await asyncio.to_thread(broker.start)
    return broker
