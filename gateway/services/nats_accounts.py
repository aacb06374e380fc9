"""NATS's accounts from the same roster accounts: an `authorization { users: [...] }` file.

nats-server (2.9) checks MQTT clients against its own users: the MQTT username and
password, bcrypt-hashed here, and per-user publish/subscribe permissions on NATS
subjects. The grants are the Mosquitto ACL's (`render_acl`), read line by line, so the
two brokers cannot drift apart: `topic` lines go to their account, `pattern` lines to
every account with `%u` replaced by its username (as Mosquitto applies them). An MQTT
topic is a NATS subject with `/` as `.`, `+` as `*`, `#` as `>`; `a/#` also matches `a`,
so it grants both `a.>` and `a`.

What NATS's MQTT needs beyond the topics (server/mqtt.go, v2.9.10): a QoS 1
subscription is delivered by a JetStream consumer to a subscription the client itself
makes on `$MQTT.sub.<nuid>`, checked against the client's subscribe permissions, so
every account may subscribe `$MQTT.sub.>`. Sessions, retained messages, the QoS 1 store
and acknowledgements go through the server's internal client, which no user permission
limits. An MQTT client can never subscribe `$MQTT.sub.…` itself (NATS refuses such a
filter), but a NATS-protocol client could read every QoS 1 delivery there, so every
account is limited to MQTT connections (`allowed_connection_types`).

NATS cannot tie the MQTT client id to the username: a device logging in with another
device's client id takes over that session (MQTT's rule) and is still confined to its
own topics, as its permissions come from the username.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import bcrypt

NATS_ACCOUNTS = "nats-accounts.conf"
# bcrypt hashes of passwords already hashed, keyed by the password's SHA-256: a roster
# change re-hashes only new and rotated passwords (bcrypt is slow on purpose).
_HASH_CACHE = ".nats-accounts-hashes.json"
# The passwords are 192-bit random tokens, which no cost factor makes easier or harder to
# guess; but NATS runs bcrypt at every connect, and a killed node's terminals all reconnect
# at once. Go's default, 10, took 0.17 s per hash on the (loaded) build machine; 6 is 16
# times cheaper.
BCRYPT_COST = 6
# Where NATS's MQTT delivers QoS 1 messages to a subscribing client (server/mqtt.go).
MQTT_DELIVERY = "$MQTT.sub.>"


def nats_subject(topic: str) -> str:
    """The NATS subject of an MQTT topic (filter); ValueError for what NATS 2.9 refuses."""
    if "." in topic or " " in topic:
        raise ValueError(f"NATS 2.9 refuses '.' and ' ' in MQTT topics: {topic!r}")
    levels = topic.split("/")
    if not all(levels):
        raise ValueError(f"empty topic level in {topic!r}")
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in levels)


def _subjects(topic: str) -> list[str]:
    """`a/#` matches `a` too in MQTT: NATS needs both `a.>` and `a`."""
    subject = nats_subject(topic)
    return [subject, subject[:-2]] if subject.endswith(".>") else [subject]


def unsupported(device_id: str) -> str | None:
    """Why a (Mosquitto-valid) device id cannot have a NATS account, or None."""
    if "." in device_id:
        return "NATS 2.9 refuses '.' in MQTT topics: no NATS account"
    return None


def grants(
    acl: str, devices: Iterable[str], services: Iterable[str]
) -> dict[str, tuple[list[str], list[str]]]:
    """`{user: (publish subjects, subscribe subjects)}` from the Mosquitto ACL text.

    `topic` lines go to their service account; `pattern` lines with `%u` to every device
    (Mosquitto gives them to service accounts too, as topics of a device of that name,
    which cannot exist: they are left out here), the other patterns to every account.
    """
    device_set = set(devices)
    found: dict[str, tuple[list[str], list[str]]] = {u: ([], []) for u in [*device_set, *services]}
    current: str | None = None
    for number, line in enumerate(acl.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user" and len(words) == 2:
            current = words[1]
            continue
        if words[0] not in ("topic", "pattern") or len(words) != 3:
            raise ValueError(f"ACL line {number}: cannot read {line!r}")
        kind, access, topic = words
        if access not in ("read", "write"):
            raise ValueError(f"ACL line {number}: {access!r} is not read or write")
        side = 0 if access == "write" else 1
        if kind == "topic":
            if current is None:
                raise ValueError(f"ACL line {number}: a topic before any user")
            if current in found and current not in device_set:
                found[current][side].extend(_subjects(topic))
            continue
        for user, sides in found.items():
            if "%u" not in topic or user in device_set:
                sides[side].extend(_subjects(topic.replace("%u", user)))
    return found


def _quote(text: str) -> str:
    return json.dumps(text)  # a NATS config string: double quotes, JSON escapes


def render_nats_accounts(
    hashed: dict[str, str], permissions: dict[str, tuple[list[str], list[str]]]
) -> str:
    """The include file: one user per account, MQTT only, its own subjects only."""
    lines = [
        "# Made by `campusgate devices credentials`; edits are overwritten.",
        "# Include it from the node's configuration (include ./campusgate/nats-accounts.conf);",
        "# after a change: nats-server --signal reload (or SIGHUP) on every node.",
        "authorization {",
        "  users: [",
    ]
    for user in sorted(hashed):
        publish, subscribe = permissions[user]
        # An empty allow list is no limit at all in NATS: deny everything instead.
        pub = (
            f"allow: [{', '.join(map(_quote, dict.fromkeys(publish)))}]"
            if publish
            else 'deny: [">"]'
        )
        sub = ", ".join(map(_quote, dict.fromkeys([*subscribe, MQTT_DELIVERY])))
        lines += [
            "    {",
            f"      user: {_quote(user)}",
            f"      password: {_quote(hashed[user])}",
            '      allowed_connection_types: ["MQTT"]',
            "      permissions: {",
            f"        publish: {{ {pub} }}",
            f"        subscribe: {{ allow: [{sub}] }}",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def hash_passwords(out: Path, accounts: dict[str, str]) -> dict[str, str]:
    """bcrypt hashes of `accounts` (username -> password), reusing those already made."""
    cache_path = out / _HASH_CACHE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    hashed: dict[str, str] = {}
    for user, password in accounts.items():
        known = cache.get(user)
        if isinstance(known, dict) and known.get("sha256") == _fingerprint(password):
            hashed[user] = str(known["bcrypt"])
        else:
            salt = bcrypt.gensalt(rounds=BCRYPT_COST, prefix=b"2a")  # NATS reads $2a$
            hashed[user] = bcrypt.hashpw(password.encode(), salt).decode()
    cache = {u: {"sha256": _fingerprint(p), "bcrypt": hashed[u]} for u, p in accounts.items()}
    _write(cache_path, json.dumps(cache, indent=0, sort_keys=True), 0o600)
    return hashed


def write_nats_accounts(
    out: Path, devices: dict[str, str], services: dict[str, str], acl: str
) -> dict[str, str]:
    """Write `out`/nats-accounts.conf for `devices` and `services` (username -> password)
    under the grants of `acl`; returns the devices left out and why."""
    refused = {d: r for d in devices if (r := unsupported(d))}
    kept = {d: p for d, p in devices.items() if d not in refused}
    permissions = grants(acl, kept, services)
    hashed = hash_passwords(out, {**kept, **services})
    _write(out / NATS_ACCOUNTS, render_nats_accounts(hashed, permissions), 0o640)
    return refused


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically (a reloading broker reads the old or the new file), `mode` from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as dst:
            dst.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
