"""NATS's accounts file: the Mosquitto ACL's grants as subjects, bcrypt hashes, kept hashes.

That nats-server enforces the file is tested in tests/e2e/security/test_nats_cluster_accounts.py;
that it parses is checked here by `nats-server -t` on a node file that includes it.
"""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import bcrypt
import pytest
from nats_cluster import NATS_SERVER, require_nats_server

from gateway.services.broker_credentials import (
    GATEWAY_ACCOUNT,
    INTEGRATION_ACCOUNT,
    SIM_ACCOUNT,
    render_acl,
    write_credentials,
)
from gateway.services.nats_accounts import (
    MQTT_DELIVERY,
    NATS_ACCOUNTS,
    grants,
    nats_subject,
    render_nats_accounts,
)


def _users(text: str) -> dict[str, str]:
    """username -> its block of the file."""
    blocks = text.split("\n    {\n")[1:]
    return {re.search(r'user: "([^"]+)"', b).group(1): b for b in blocks}  # type: ignore[union-attr]


def _passwords(out: Path) -> dict[str, str]:
    found = {}
    for name in ("device-secrets.csv", "service-secrets.csv"):
        with (out / name).open() as src:
            found.update({r["username"]: r["password"] for r in csv.DictReader(src)})
    return found


def _hash_of(block: str) -> str:
    return re.search(r'password: "([^"]+)"', block).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("campus/devices/term-a/events", "campus.devices.term-a.events"),
        ("campus/devices/+/commands", "campus.devices.*.commands"),
        ("campus/alerts/#", "campus.alerts.>"),
        ("campus/gateway/state/+", "campus.gateway.state.*"),
    ],
)
def test_topics_become_the_subjects_nats_matches_them_on(topic: str, subject: str) -> None:
    assert nats_subject(topic) == subject


@pytest.mark.parametrize("topic", ["camp.us/devices/x", "campus/devices/a b", "campus//x"])
def test_topics_nats_refuses_are_refused_here(topic: str) -> None:
    with pytest.raises(ValueError):
        nats_subject(topic)


def test_every_mosquitto_grant_is_a_nats_permission_and_nothing_else() -> None:
    acl = render_acl("campus", sim_account=True)
    found = grants(acl, ["term-a", "term-b"], [GATEWAY_ACCOUNT, INTEGRATION_ACCOUNT, SIM_ACCOUNT])
    term_a_pub, term_a_sub = found["term-a"]
    assert term_a_pub == [
        "campus.devices.term-a.events",
        "campus.devices.term-a.state",
        "campus.devices.term-a.uploads",
    ]
    assert term_a_sub == [
        "campus.devices.term-a.commands",
        "campus.devices.term-a.allowlist",
        "campus.devices.term-a.allowlist-delta",
        "campus.gateway.signing-key",
        "campus.gateway.state.*",
    ]
    gw_pub, gw_sub = found[GATEWAY_ACCOUNT]
    assert "campus.devices.*.commands" in gw_pub and "campus.devices.*.events" in gw_sub
    # MQTT's `alerts/#` matches `alerts` itself: NATS needs both subjects.
    assert {"campus.alerts.>", "campus.alerts", "campus.gateway.>"} <= set(gw_pub)
    # Service accounts get no device topics of their own name (Mosquitto's %u would).
    assert not any("campusgate-" in s for pub, sub in found.values() for s in pub + sub)
    assert found[INTEGRATION_ACCOUNT] == (
        [],
        [
            "campus.alerts.>",
            "campus.alerts",
            "campus.gateway.signing-key",
            "campus.gateway.state.*",
        ],
    )
    # Each line of the ACL is a permission of the account(s) it applies to.
    user = None
    for words in (line.split() for line in acl.splitlines()):
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:1] in (["topic"], ["pattern"]):
            side = 0 if words[1] == "write" else 1
            owners = [user] if words[0] == "topic" else (
                ["term-a", "term-b"] if "%u" in words[2] else list(found)
            )  # fmt: skip
            for owner in owners:
                subject = nats_subject(words[2].replace("%u", str(owner)))
                assert subject in found[str(owner)][side], (owner, words)


def test_an_account_with_nothing_to_publish_is_denied_every_subject() -> None:
    """An empty allow list is no limit in NATS: the integration account gets deny ">"."""
    acl = render_acl("campus")
    found = grants(acl, ["term-a"], [INTEGRATION_ACCOUNT])
    text = render_nats_accounts({"term-a": "$2a$10$a", INTEGRATION_ACCOUNT: "$2a$10$b"}, found)
    users = _users(text)
    assert 'publish: { deny: [">"] }' in users[INTEGRATION_ACCOUNT]
    assert 'publish: { allow: ["campus.devices.term-a.events"' in users["term-a"]
    for block in users.values():
        assert 'allowed_connection_types: ["MQTT"]' in block
        assert f'"{MQTT_DELIVERY}"' in block


def test_credentials_write_a_nats_file_with_bcrypt_hashes_kept_across_runs(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    outcome = write_credentials(out, ["term-a", "term-b", "term.c"], prefix="campus")
    assert outcome.nats_skipped == {
        "term.c": "NATS 2.9 refuses '.' in MQTT topics: no NATS account"
    }
    conf = out / NATS_ACCOUNTS
    assert (conf.stat().st_mode & 0o777) == 0o640
    first = _users(conf.read_text())
    assert sorted(first) == [GATEWAY_ACCOUNT, INTEGRATION_ACCOUNT, "term-a", "term-b"]
    passwords = _passwords(out)
    assert "term.c" in passwords  # Mosquitto still has it
    for user, block in first.items():
        hashed = _hash_of(block)
        assert hashed.startswith("$2a$06$")  # the form nats-server recognises as bcrypt
        assert bcrypt.checkpw(passwords[user].encode(), hashed.encode())
        assert passwords[user] not in conf.read_text()

    again = write_credentials(out, ["term-a", "term-b"], prefix="campus", rotate=["term-a"])
    assert again.rotated == ["term-a"] and again.nats_skipped == {}
    second = _users(conf.read_text())
    assert _hash_of(second["term-b"]) == _hash_of(first["term-b"])  # not hashed again
    assert _hash_of(second["term-a"]) != _hash_of(first["term-a"])
    assert bcrypt.checkpw(_passwords(out)["term-a"].encode(), _hash_of(second["term-a"]).encode())

    write_credentials(out, ["term-b"], prefix="campus")
    assert "term-a" not in _users(conf.read_text())


def test_a_prefix_nats_cannot_carry_leaves_no_nats_file(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    write_credentials(out, ["term-a"], prefix="campus")
    outcome = write_credentials(out, ["term-a"], prefix="camp.us")
    assert "*" in outcome.nats_skipped and "'.'" in outcome.nats_skipped["*"]
    assert not (out / NATS_ACCOUNTS).exists()  # never grants made for another prefix
    assert (out / "acl").exists()


def test_nats_server_accepts_the_file(tmp_path: Path) -> None:
    require_nats_server()
    out = tmp_path / "broker"
    write_credentials(out, ["term-a", "term-b"], prefix="campus", sim_account=True)
    node = tmp_path / "node.conf"
    node.write_text(f"mqtt {{ listen: 127.0.0.1:-1 }}\ninclude ./broker/{NATS_ACCOUNTS}\n")
    checked = subprocess.run(
        [NATS_SERVER, "-c", str(node), "-t"], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
