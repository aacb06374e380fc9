"""Broker accounts from the roster: Mosquitto's password file, a pattern ACL, NATS's
accounts file (gateway/services/nats_accounts.py), the secrets.

One account per MQTT device (username = client id = device id), the gateway's
account (all events and states in, all commands and alerts out), an integration
account (alerts only) and, when asked, a simulator account for labs and benches.

The password file is hashed by Mosquitto's own `mosquitto_passwd -U` (its `$7$`
PBKDF2-SHA512 format), never by this code. The plaintext passwords live only in
`device-secrets.csv` and `service-secrets.csv` (0600): the firmware provisioning
needs them, and a device keeps its password across runs until it is rotated.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.services.nats_accounts import NATS_ACCOUNTS, write_nats_accounts

PASSWD, ACL = "passwd", "acl"
# The service listener's password file: the service accounts only, so no device can log in
# where client ids are not bound to usernames (mosquitto-secure.conf).
SERVICE_PASSWD = "passwd-services"
DEVICE_SECRETS, SERVICE_SECRETS = "device-secrets.csv", "service-secrets.csv"
GATEWAY_ACCOUNT = "campusgate-gateway"
INTEGRATION_ACCOUNT = "campusgate-integration"
SIM_ACCOUNT = "campusgate-sim"
RESERVED_PREFIX = "campusgate-"
# Usernames end up in ACL topics (`%u`): '/', '+', '#' would widen a device's reach,
# so device ids with them get no account.
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CredentialsError(Exception):
    """The files cannot be made; the message says what to do."""


@dataclass(slots=True)
class Outcome:
    """What a run changed: device ids added, rotated and dropped; ids refused and why."""

    added: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    # Accounts Mosquitto has but NATS cannot (id -> why); "*": no NATS file at all.
    nats_skipped: dict[str, str] = field(default_factory=dict)
    devices: int = 0
    reloaded: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.rotated or self.removed)


def render_acl(prefix: str, *, sim_account: bool = False) -> str:
    """The ACL: named accounts first, then the per-device patterns (`%u` = the username).

    `%u`, not `%c`: the username is authenticated (password or certificate CN) while a
    client id is whatever the client says, so `%c` would let any account act as any device.
    """
    lines = [
        "# Made by `campusgate devices credentials`; edits are overwritten.",
        "# Mosquitto denies whatever is not granted here.",
        "",
        f"user {GATEWAY_ACCOUNT}",
        f"topic read {prefix}/devices/+/events",
        f"topic read {prefix}/devices/+/state",
        f"topic write {prefix}/devices/+/commands",
        f"topic read {prefix}/devices/+/uploads",  # offline decisions (issue 13)
        f"topic write {prefix}/devices/+/allowlist",
        f"topic write {prefix}/devices/+/allowlist-delta",
        f"topic write {prefix}/alerts/#",
        f"topic write {prefix}/gateway/#",  # the command-signing key and presence, retained
        "",
        f"user {INTEGRATION_ACCOUNT}",
        f"topic read {prefix}/alerts/#",
        "",
    ]
    if sim_account:
        lines += [
            "# Simulated doors (campusgate sim, bench): every device's side. Not for production.",
            f"user {SIM_ACCOUNT}",
            f"topic write {prefix}/devices/+/events",
            f"topic write {prefix}/devices/+/state",
            f"topic read {prefix}/devices/+/commands",
            f"topic write {prefix}/devices/+/uploads",
            f"topic read {prefix}/devices/+/allowlist",
            f"topic read {prefix}/devices/+/allowlist-delta",
            f"topic read {prefix}/alerts/#",
            f"topic read {prefix}/gateway/#",
            "",
        ]
    lines += [
        "# Every device: its own events and state out, its own commands in.",
        f"pattern write {prefix}/devices/%u/events",
        f"pattern write {prefix}/devices/%u/state",
        f"pattern read {prefix}/devices/%u/commands",
        "# Offline decisions: its own allowlist in, what it decided offline out.",
        f"pattern write {prefix}/devices/%u/uploads",
        f"pattern read {prefix}/devices/%u/allowlist",
        f"pattern read {prefix}/devices/%u/allowlist-delta",
        "# Everyone may read (only the gateway may write) the key that signs commands,",
        "# and the gateway's presence.",
        f"pattern read {prefix}/gateway/signing-key",
        f"pattern read {prefix}/gateway/state/+",
        "",
    ]
    return "\n".join(lines)


def check_device_id(device_id: str) -> str | None:
    """Why `device_id` cannot have a broker account, or None when it can."""
    if device_id.startswith(RESERVED_PREFIX):
        return f"names starting with {RESERVED_PREFIX!r} are the gateway's own accounts"
    if not _DEVICE_ID.match(device_id):
        return "use letters, digits, '.', '_' and '-' only (the id is an ACL topic level)"
    return None


def _new_password() -> str:
    return secrets.token_urlsafe(24)


def read_secrets(path: Path) -> dict[str, tuple[str, str]]:
    """`{id: (username, password)}` from a secrets CSV; {} when there is none yet."""
    if not path.exists():
        return {}
    rows: dict[str, tuple[str, str]] = {}
    with path.open(newline="") as src:
        for row in csv.DictReader(src):
            ident = row.get("device_id") or row.get("account")
            if ident and row.get("username") and row.get("password"):
                rows[ident] = (row["username"], row["password"])
    return rows


def _write_private(path: Path, text: str, mode: int) -> None:
    """Write atomically (readers see the old or the new file) with `mode` from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv(header: list[str], rows: Iterable[tuple[str, str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None
    )
    if found is None:
        raise CredentialsError(
            "mosquitto_passwd not found: install Mosquitto (Debian: apt-get install mosquitto)"
            " on the machine that makes the broker's files"
        )
    return found


def hash_password_file(path: Path, accounts: dict[str, str]) -> None:
    """Write Mosquitto's password file for `accounts` (username -> password), hashed by
    `mosquitto_passwd -U` in a private temporary file, then moved into place."""
    tool = mosquitto_passwd()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{user}:{password}\n" for user, password in sorted(accounts.items()))
        done = subprocess.run(
            [tool, "-U", tmp], capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise CredentialsError(
                f"mosquitto_passwd -U failed ({done.returncode}): {done.stderr.strip()}"
            )
        # The broker (user mosquitto) reads it: group-readable, never world-readable.
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_credentials(
    out: Path,
    device_ids: Iterable[str],
    *,
    prefix: str,
    rotate: Iterable[str] = (),
    sim_account: bool = False,
) -> Outcome:
    """Make or update `out`/{passwd, passwd-services, acl, nats-accounts.conf,
    device-secrets.csv, service-secrets.csv}.

    Devices already in `device-secrets.csv` keep their passwords unless named in
    `rotate`; devices no longer in `device_ids` are dropped from every file.
    """
    # A new directory is closed to others; an existing one keeps the access its owner gave
    # it (the broker's group must be able to enter it).
    out.mkdir(mode=0o750, parents=True, exist_ok=True)
    # One writer at a time (a `--watch` and a manual `--rotate` may overlap): otherwise
    # one could hand out a password the other then overwrites.
    with (out / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write_locked(out, device_ids, prefix, set(rotate), sim_account)


def _write_locked(
    out: Path, device_ids: Iterable[str], prefix: str, rotate: set[str], sim_account: bool
) -> Outcome:
    wanted, refused = [], {}
    for device_id in sorted(set(device_ids)):
        reason = check_device_id(device_id)
        if reason:
            refused[device_id] = reason
        else:
            wanted.append(device_id)
    unknown = rotate - set(wanted) - {GATEWAY_ACCOUNT, INTEGRATION_ACCOUNT, SIM_ACCOUNT}
    if unknown:
        raise CredentialsError(
            f"cannot rotate {', '.join(sorted(unknown))}: not an MQTT device of the roster"
            " nor a service account"
        )
    known = read_secrets(out / DEVICE_SECRETS)
    outcome = Outcome(refused=refused, devices=len(wanted))
    devices: dict[str, str] = {}
    for device_id in wanted:
        if device_id in known and device_id not in rotate:
            devices[device_id] = known[device_id][1]
            continue
        devices[device_id] = _new_password()
        (outcome.rotated if device_id in known else outcome.added).append(device_id)
    outcome.removed.extend(sorted(set(known) - set(wanted)))

    service_names = [GATEWAY_ACCOUNT, INTEGRATION_ACCOUNT] + ([SIM_ACCOUNT] if sim_account else [])
    known_services = read_secrets(out / SERVICE_SECRETS)
    services = {
        name: known_services[name][1]
        if name in known_services and name not in rotate
        else _new_password()
        for name in service_names
    }
    outcome.rotated.extend(n for n in service_names if n in rotate and n in known_services)

    # The broker's files first: a failure here leaves the secrets as they were, and one
    # after it leaves a device unknown to the secrets, which the next run gives a new
    # password (never a secret the broker does not know).
    hash_password_file(out / PASSWD, {**devices, **services})
    hash_password_file(out / SERVICE_PASSWD, services)
    acl = render_acl(prefix, sim_account=sim_account)
    _write_private(out / ACL, acl, 0o640)
    try:
        outcome.nats_skipped = write_nats_accounts(out, devices, services, acl)
    except ValueError as exc:  # a prefix NATS cannot carry: Mosquitto's files still hold
        (out / NATS_ACCOUNTS).unlink(missing_ok=True)  # never a file of other grants
        outcome.nats_skipped = {"*": f"no {NATS_ACCOUNTS}: {exc}"}
    _write_private(
        out / DEVICE_SECRETS,
        _csv(["device_id", "username", "password"], ((d, d, p) for d, p in devices.items())),
        0o600,
    )
    _write_private(
        out / SERVICE_SECRETS,
        _csv(["account", "username", "password"], ((n, n, p) for n, p in services.items())),
        0o600,
    )
    return outcome


def reload_broker(pid_file: Path) -> None:
    """Make Mosquitto re-read its password file and ACL (SIGHUP: no restart, no disconnect)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot read the broker's pid from {pid_file}: {exc}; set `pid_file` in"
            " mosquitto.conf or send SIGHUP to the broker yourself"
        ) from None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise CredentialsError(
            f"cannot signal the broker (pid {pid} from {pid_file}): {exc}; run this as the"
            " broker's user or root"
        ) from None
