"""The clustered-broker variants of deploy/ (issue 14): what can be checked without them.

The NATS node configuration is checked by nats-server itself and must carry the MQTT
settings the cluster tests run with; the EMQX ACL written from `campusgate devices
credentials` grants what the Mosquitto ACL grants and denies the rest. EMQX itself is not
installable here, so its configuration is not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from nats_cluster import ACK_WAIT, NATS_SERVER, require_nats_server

from gateway.services.broker_credentials import render_acl, write_credentials
from gateway.services.nats_accounts import NATS_ACCOUNTS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NATS_CONF = DEPLOY / "nats" / "nats-cluster.conf"
COMPOSE_FILES = [DEPLOY / "compose" / "emqx-cluster.yml", DEPLOY / "compose" / "nats-cluster.yml"]


def _sync_module():
    path = DEPLOY / "emqx" / "campusgate-emqx-sync.py"
    spec = importlib.util.spec_from_file_location("campusgate_emqx_sync", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_cluster_compose_files_parse_and_mount_files_that_exist(path: Path) -> None:
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    brokers = [name for name in compose["services"] if re.fullmatch(r"(emqx|nats)-\d", name)]
    assert len(brokers) == 3
    assert "mosquitto" not in compose["services"]
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("../"):
                assert (path.parent / source).resolve().exists(), source
    gateway = compose["services"]["gateway"]
    assert gateway["command"] == ["serve"]
    if path.name == "nats-cluster.yml":  # the folder the nodes' `include` reads
        for node in brokers:
            volumes = compose["services"][node]["volumes"]
            assert "./secrets/nats:/etc/nats/campusgate:ro" in volumes
            # Never the folder with the plaintext passwords (device-secrets.csv,
            # service-secrets.csv): a node holds only the bcrypt hashes.
            assert not any(v.startswith("./secrets/broker") for v in volumes), volumes


def test_the_nats_node_configuration_is_valid_and_is_what_the_tests_run(tmp_path: Path) -> None:
    require_nats_server()
    text = NATS_CONF.read_text()
    mqtt = text[text.index("\nmqtt {") :]
    assert f'ack_wait: "{ACK_WAIT}"' in mqtt
    assert "stream_replicas: 3" in mqtt and "consumer_replicas: 3" in mqtt
    # Every node includes the accounts `devices credentials` writes, beside the file in
    # campusgate/ (where the compose file mounts secrets/nats).
    assert f"\ninclude ./campusgate/{NATS_ACCOUNTS}\n" in text
    assert "\nauthorization" not in text.split("\ninclude")[0]  # no second set of users
    write_credentials(tmp_path / "campusgate", ["term-a"], prefix="campus")
    # Without certificates here: the TLS block out, the store in tmp_path.
    body = re.sub(r"\n  tls \{.*?\n  \}\n", "\n", text, flags=re.S)
    body = body.replace("/data/jetstream", str(tmp_path / "js"))
    conf = tmp_path / "node.conf"
    conf.write_text(body)
    checked = subprocess.run(
        [NATS_SERVER, "-c", str(conf), "-t"],
        capture_output=True,
        text=True,
        env={**os.environ, "NATS_NAME": "nats-1"},
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_emqx_acl_grants_what_the_mosquitto_acl_grants() -> None:
    sync = _sync_module()
    mosquitto = render_acl("campus", sim_account=True)
    emqx = sync.acl_to_emqx(mosquitto)
    assert "%u" not in emqx
    grants = 0
    user = None
    for line in mosquitto.splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:1] in (["topic"], ["pattern"]):
            action = "subscribe" if words[1] == "read" else "publish"
            who = f'{{user, "{user}"}}' if words[0] == "topic" else "all"
            topic = words[2].replace("%u", "${username}")
            assert f'{{allow, {who}, {action}, ["{topic}"]}}.' in emqx, line
            grants += 1
    rules = [r for r in emqx.splitlines() if r.startswith("{")]
    assert len(rules) == grants + 1 and rules[-1] == "{deny, all}."
    # A device pattern stays confined to the device's own topics.
    assert '{allow, all, publish, ["campus/devices/${username}/events"]}.' in emqx
    assert '{allow, all, publish, ["campus/devices/+/events"]}.' not in emqx


def test_an_acl_line_the_converter_cannot_read_is_refused() -> None:
    sync = _sync_module()
    with pytest.raises(ValueError, match="line 2"):
        sync.acl_to_emqx("user campusgate-gateway\ntopic readwrite campus/#\n")
    with pytest.raises(ValueError, match="before any user"):
        sync.acl_to_emqx("topic read campus/#\n")
