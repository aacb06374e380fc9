"""A private Mosquitto from the deploy configuration (imported by conftest and tests)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
if not os.path.exists(MOSQUITTO):
    raise pytest.UsageError(
        "the tests need the mosquitto broker binary: install it (Debian: apt-get install mosquitto)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEPLOY_MOSQUITTO_CONF = (
    Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"
)


def start_mosquitto(
    workdir: Path, *, port: int | None = None, persistent: bool = False
) -> tuple[subprocess.Popen, int]:
    """Mosquitto with the deploy configuration on a private port (`port`: that one again).

    `persistent` keeps the deploy file's persistence, with its database in `workdir`, so a
    broker killed and started again on the same port and directory finds its sessions.
    """
    port = port or free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    body = DEPLOY_MOSQUITTO_CONF.read_text() if DEPLOY_MOSQUITTO_CONF.exists() else ""
    # The deploy file listens on 1883; the tests use a private port, and no persistence
    # file unless asked.
    dropped = ("listener", "log_dest", "persistence_location")
    if not persistent:
        dropped += ("persistence",)
    body = "\n".join(line for line in body.splitlines() if not line.startswith(dropped))
    # Mosquitto started as root runs as user `mosquitto`, which may not write in `workdir`:
    # run as whoever runs the tests.
    where = f"persistence_location {workdir}/\nuser {getpass.getuser()}\n" if persistent else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{where}{body}\n")
    # The log goes to a file: an unread pipe would fill up and stall the broker.
    log = workdir / f"mosquitto-{port}.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start listening within 10 s")
