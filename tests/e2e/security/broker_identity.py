"""Broker files made by our own commands for the security tests (imported, not a conftest)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.services.broker_credentials import write_credentials
from gateway.services.certificates import init_ca, issue_device

PREFIX = "campus"
DEVICES = ["term-a", "term-b", "term-c"]


@dataclass
class BrokerFiles:
    dir: Path
    passwords: dict[str, str]  # username -> password, devices and services
    certs: Path  # device client certificates: term-a (valid), expired/, foreign/

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def reload_passwords(self) -> None:
        self.passwords = _passwords(self.dir)


def _passwords(files: Path) -> dict[str, str]:
    found = {}
    for name in ("device-secrets.csv", "service-secrets.csv"):
        with (files / name).open() as src:
            found.update({row["username"]: row["password"] for row in csv.DictReader(src)})
    return found


def make_files(files: Path, devices: list[str], *, prefix: str = PREFIX) -> BrokerFiles:
    init_ca(files, ["127.0.0.1", "localhost"])
    write_credentials(files, devices, prefix=prefix, sim_account=True)
    certs = files / "devices"
    issue_device("term-a", files, certs)
    # Expired a day ago: issued 31 days back, valid 30 days.
    issue_device("term-a", files, certs / "expired", days=30, now=datetime.now(UTC) - timedelta(31))
    # Same CN, signed by a CA the broker does not trust.
    other = files / "other-ca"
    init_ca(other, ["127.0.0.1"])
    issue_device("term-a", other, certs / "foreign")
    return BrokerFiles(files, _passwords(files), certs)
