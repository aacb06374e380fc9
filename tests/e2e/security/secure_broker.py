"""A real Mosquitto from deploy/mosquitto/mosquitto-secure.conf with generated files."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from broker_fixtures import MOSQUITTO, free_port

SECURE_CONF = Path(__file__).resolve().parents[3] / "deploy" / "mosquitto" / "mosquitto-secure.conf"
SHIPPED_DIR = "/etc/mosquitto/campusgate/"


@dataclass
class SecureBroker:
    proc: subprocess.Popen
    service_port: int  # the gateway's and integrations' accounts over TLS (8883 shipped)
    cert_port: int  # devices with client certificates (8884)
    device_port: int  # devices with passwords (8885)
    pid_file: Path
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_secure_broker(workdir: Path, files: Path) -> SecureBroker:
    """The shipped secure configuration, its paths pointed at `files`, on private ports."""
    service_port, cert_port, device_port = free_port(), free_port(), free_port()
    ports = {"8883": service_port, "8884": cert_port, "8885": device_port}
    pid_file = workdir / "mosquitto.pid"
    lines = []
    for line in SECURE_CONF.read_text().splitlines():
        if line.startswith(("persistence", "pid_file")):
            continue  # no database file in tests; the pid file goes to workdir
        line = line.replace(SHIPPED_DIR, f"{files}/")
        name, _, value = line.partition(" ")
        if name == "listener":
            line = f"listener {ports[value]} 127.0.0.1"
        lines.append(line)
    # Started as root, Mosquitto would switch to user `mosquitto`, which may not read the
    # test's files: run as whoever runs the tests.
    lines += [f"pid_file {pid_file}", f"user {getpass.getuser()}", "log_type all"]
    conf = workdir / "mosquitto-secure.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = workdir / "mosquitto.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            for port in ports.values():
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if pid_file.exists() and pid_file.read_text().strip():
                return SecureBroker(proc, service_port, cert_port, device_port, pid_file, log)
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start listening within 10 s")
