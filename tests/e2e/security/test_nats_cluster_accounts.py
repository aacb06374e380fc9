"""The NATS cluster with the accounts `campusgate devices credentials` writes (issue 14).

Three real nats-server 2.9.10 nodes include `nats-accounts.conf`; the clients are spread
over the nodes. NATS speaks MQTT 3.1.1: a refused subscription is SUBACK 0x80, and a
refused publish is acknowledged and dropped, so a refusal shows as the message never
reaching a subscriber (checked by a later allowed message from the same client arriving
alone) and as the node's "Publish Violation" log line.
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from gateway_fixtures import running_gateway
from mqtt_probe import ConnectRefused, Probe, connect
from nats_cluster import NatsCluster, require_nats_server
from paho.mqtt.enums import MQTTProtocolVersion

from devices.transports.mqtt import BrokerAddress, Protocol
from firmware_sim.fleet import Fleet, load_device_secrets
from gateway.cli import main
from gateway.services.broker_credentials import (
    GATEWAY_ACCOUNT,
    INTEGRATION_ACCOUNT,
    write_credentials,
)
from gateway.services.nats_accounts import NATS_ACCOUNTS

PREFIX = "campus"
REFUSED = 0x80  # SUBACK failure, MQTT 3.1.1
V311 = MQTTProtocolVersion.MQTTv311


def _passwords(out: Path) -> dict[str, str]:
    found = {}
    for name in ("device-secrets.csv", "service-secrets.csv"):
        with (out / name).open() as src:
            found.update({r["username"]: r["password"] for r in csv.DictReader(src)})
    return found


def _credentials(dsn: str, out: Path, *args: str) -> str:
    """`campusgate devices credentials --out OUT ...` as an operator runs it; its stderr."""
    result = CliRunner().invoke(
        main, ["--database-url", dsn, "devices", "credentials", "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stderr


def _cluster(workdir: Path, out: Path) -> NatsCluster:
    require_nats_server()
    login = (GATEWAY_ACCOUNT, _passwords(out)[GATEWAY_ACCOUNT])
    return NatsCluster(workdir, accounts=out / NATS_ACCOUNTS, probe_login=login)


def _probe(cluster: NatsCluster, node: int, user: str, password: str, **kw: str) -> Probe:
    port = cluster.ports[node].mqtt
    return connect(port, client_id=kw.get("client_id", user), username=user, password=password,
                   protocol=V311)  # fmt: skip


def _next_message(probe: Probe, topic: str) -> list[tuple[str, bytes]]:
    """Everything `probe` received up to and including the first message on `topic`."""
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for msg in probe.received(0.2):
            got.append((msg.topic, msg.payload))
            if msg.topic == topic:
                return got
    raise AssertionError(f"nothing on {topic} within 15 s; got {got}")


def _nats_protocol_refused(port: int, user: str, password: str) -> bytes:
    """A NATS-protocol client (not MQTT) logging in with `user`'s password: the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.recv(4096)  # INFO
        login = json.dumps({"user": user, "pass": password, "verbose": False})
        sock.sendall(f"CONNECT {login}\r\nPING\r\n".encode())
        return sock.recv(4096)


@pytest.fixture
def roster_files(tmp_path: Path) -> Path:
    """The accounts of three devices as the command writes them (no database needed)."""
    out = tmp_path / "broker"
    write_credentials(out, ["term-a", "term-b", "term-c"], prefix=PREFIX)
    return out


@pytest.fixture
def cluster(tmp_path: Path, roster_files: Path) -> Iterator[NatsCluster]:
    with _cluster(tmp_path / "nats", roster_files) as started:
        print(f"cluster with accounts ready in {started.started_in_s:.1f} s")
        yield started


def test_each_account_reaches_only_its_own_subjects(
    cluster: NatsCluster, roster_files: Path
) -> None:
    pw = _passwords(roster_files)
    events, state = f"{PREFIX}/devices/+/events", f"{PREFIX}/devices/+/state"
    gateway = _probe(cluster, 0, GATEWAY_ACCOUNT, pw[GATEWAY_ACCOUNT])
    term_a = _probe(cluster, 1, "term-a", pw["term-a"])
    term_b = _probe(cluster, 2, "term-b", pw["term-b"])
    integration = _probe(cluster, 2, INTEGRATION_ACCOUNT, pw[INTEGRATION_ACCOUNT])
    probes = [gateway, term_a, term_b, integration]
    try:
        assert gateway.subscribe(events) == 1 and gateway.subscribe(state) == 1
        assert term_a.subscribe(f"{PREFIX}/devices/term-a/commands") == 1
        assert term_b.subscribe(f"{PREFIX}/devices/term-b/commands") == 1
        assert integration.subscribe(f"{PREFIX}/alerts/#") == 1
        # A device reads no one else's commands, no alerts, nothing wider.
        for topic in ("devices/term-b/commands", "devices/+/commands", "alerts/#", "#"):
            assert term_a.subscribe(f"{PREFIX}/{topic}" if topic != "#" else "#") == REFUSED
        # Nor NATS's own QoS 1 delivery subjects (NATS refuses those filters to MQTT).
        assert term_a.subscribe("$MQTT/sub/#") == REFUSED
        # The integration account reads alerts only.
        assert integration.subscribe(events) == REFUSED
        assert integration.subscribe(f"{PREFIX}/devices/term-a/commands") == REFUSED

        # term-a forges term-b's event and state and sends commands: all dropped. Its own
        # event, sent after them, is the first and only thing the gateway gets.
        forged = {
            f"{PREFIX}/devices/term-b/events": b'{"forged": 1}',
            f"{PREFIX}/devices/term-b/state": b'{"online": false}',
            f"{PREFIX}/devices/term-b/commands": b'{"type": "decision", "decision": "admit"}',
            f"{PREFIX}/devices/term-a/commands": b'{"type": "decision", "decision": "admit"}',
            f"{PREFIX}/alerts/fever": b'{"forged": 1}',
        }
        for topic, payload in forged.items():
            term_a.publish(topic, payload)
        own = f"{PREFIX}/devices/term-a/events"
        term_a.publish(own, b'{"own": 1}')
        assert _next_message(gateway, own) == [(own, b'{"own": 1}')]

        # The gateway's command reaches its device only.
        gateway.publish(f"{PREFIX}/devices/term-b/commands", b'{"type": "real"}')
        assert _next_message(term_b, f"{PREFIX}/devices/term-b/commands") == [
            (f"{PREFIX}/devices/term-b/commands", b'{"type": "real"}')
        ]
        # The gateway's alert reaches the integration account, which can publish nothing.
        integration.publish(f"{PREFIX}/alerts/fever", b'{"forged": 2}')
        integration.publish(f"{PREFIX}/devices/term-b/commands", b'{"forged": 2}')
        gateway.publish(f"{PREFIX}/alerts/fever", b'{"real": 1}')
        assert _next_message(integration, f"{PREFIX}/alerts/fever") == [
            (f"{PREFIX}/alerts/fever", b'{"real": 1}')
        ]
        assert [(m.topic, m.payload) for m in term_b.received(0.5)] == []
        assert [(m.topic, m.payload) for m in term_a.received(0.2)] == []
        log = (cluster.workdir / "n1.log").read_text()
        for topic in forged:
            subject = topic.replace("/", ".")
            assert f'Publish Violation - User "term-a", Subject "{subject}"' in log, subject
    finally:
        for probe in probes:
            probe.close()


def test_logins_the_accounts_do_not_allow(cluster: NatsCluster, roster_files: Path) -> None:
    pw = _passwords(roster_files)
    port = cluster.ports[0].mqtt
    for user, password in (("term-a", "wrong"), ("term-z", pw["term-a"]), ("term-a", "")):
        with pytest.raises(ConnectRefused):
            connect(port, client_id=user, username=user, password=password, protocol=V311)
    with pytest.raises(ConnectRefused):
        connect(port, client_id="term-a", protocol=V311)  # no account at all
    # A device's password is for MQTT only: NATS's own protocol would reach `$MQTT.sub.>`.
    answer = _nats_protocol_refused(cluster.ports[0].client, "term-a", pw["term-a"])
    assert b"Authorization Violation" in answer
    # NATS cannot tie the client id to the username: term-a may log in as client "term-c",
    # but its permissions are term-a's, so term-c's topics stay closed to it.
    gateway = _probe(cluster, 0, GATEWAY_ACCOUNT, pw[GATEWAY_ACCOUNT])
    posing = _probe(cluster, 1, "term-a", pw["term-a"], client_id="term-c")
    try:
        assert gateway.subscribe(f"{PREFIX}/devices/+/events") == 1
        assert posing.subscribe(f"{PREFIX}/devices/term-c/commands") == REFUSED
        posing.publish(f"{PREFIX}/devices/term-c/events", b'{"forged": 1}')
        posing.publish(f"{PREFIX}/devices/term-a/events", b'{"own": 1}')
        own = f"{PREFIX}/devices/term-a/events"
        assert _next_message(gateway, own) == [(own, b'{"own": 1}')]
    finally:
        gateway.close()
        posing.close()


async def _campus(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        INSERT INTO org_units (id, name) VALUES ('cs', 'CS');
        INSERT INTO people (id, kind, name, org_unit_id) VALUES
            ('S1', 'student', 'Li Hua', 'cs'), ('S2', 'student', 'Wang Fang', 'cs');
        INSERT INTO zones (id, name, kind) VALUES ('lab', 'Lab', 'lab');
        INSERT INTO doors (id, zone_id, direction) VALUES ('lab-a', 'lab', 'both'),
            ('lab-b', 'lab', 'both'), ('lab-c', 'lab', 'both');
        INSERT INTO devices (id, door_id, kind) VALUES ('term-a', 'lab-a', 'terminal'),
            ('term-b', 'lab-b', 'terminal');
        INSERT INTO cards (uid, person_id) VALUES ('0A0B0C01', 'S1'), ('0A0B0C02', 'S2');
        INSERT INTO grants (subject_org_unit, zone_id) VALUES ('cs', 'lab');
        """
    )


async def test_the_gateway_answers_cards_on_its_nats_account(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    """The real gateway on campusgate-gateway (node 0), terminals on their own accounts
    (nodes 1 and 2), files from the roster by the command: cards are answered; a device
    forging another's swipe is never heard."""
    await _campus(conn)
    out = tmp_path / "broker"
    await asyncio.to_thread(_credentials, fresh_db, out)
    pw = _passwords(out)
    with _cluster(tmp_path / "nats", out) as cluster:
        urls = cluster.urls
        gateway_url = ",".join(urls).replace(
            "mqtt://", f"mqtt://{GATEWAY_ACCOUNT}:{pw[GATEWAY_ACCOUNT]}@", 1
        )
        address = BrokerAddress.parse(gateway_url, protocol=Protocol.V311)
        devices = load_device_secrets(out / "device-secrets.csv")
        async with (
            running_gateway(fresh_db, gateway_url, prefix=PREFIX, broker=address) as (gw, _),
            Fleet(BrokerAddress.parse(urls[1], protocol=Protocol.V311), ["term-a"],
                  prefix=PREFIX, passwords=devices) as fleet_a,
            Fleet(BrokerAddress.parse(urls[2], protocol=Protocol.V311), ["term-b"],
                  prefix=PREFIX, passwords=devices) as fleet_b,
        ):  # fmt: skip
            term_a, term_b = fleet_a["term-a"], fleet_b["term-b"]
            began = time.monotonic()
            first = await term_b.decision(
                term_b.swipe("0A0B0C02", direction="in", celsius=36.5), timeout=15
            )
            print(f"first decision over NATS with accounts in {time.monotonic() - began:.2f} s")
            assert (first["decision"], first["reason"]) == ("admit", "ok")
            template = json.loads(term_b.sent[next(iter(term_b.sent))])
            forged = {**template, "event_id": "forged-1", "card_uid": "0A0B0C01"}
            attacker = await asyncio.to_thread(_probe, cluster, 1, "term-a", pw["term-a"],
                                               client_id="term-a-rogue")  # fmt: skip
            try:
                await asyncio.to_thread(
                    attacker.publish, f"{PREFIX}/devices/term-b/events", json.dumps(forged).encode()
                )
            finally:
                attacker.close()
            for terminal, card in ((term_a, "0A0B0C01"), (term_b, "0A0B0C02")):
                decision = await terminal.decision(
                    terminal.swipe(card, direction="in", celsius=36.6), timeout=15
                )
                assert (decision["decision"], decision["reason"]) == ("admit", "ok")
            assert fleet_a.problems() == [] and fleet_b.problems() == []
            assert gw.mqtt is not None and gw.mqtt.reconnects == 0
    logged = await conn.fetch("SELECT device_id, event_id FROM access_events ORDER BY 1, 2")
    assert all(r["event_id"] != "forged-1" for r in logged)
    assert sorted(r["device_id"] for r in logged) == ["term-a", "term-b", "term-b"]


async def test_a_removed_device_loses_its_account_at_the_reload(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    """Credentials re-run after the roster changed, then every node reloads (node 0 by the
    command's --broker-pid-file, the others by `nats-server --signal reload=PID`): the
    removed device is disconnected and refused, a new one logs in, the others stay; a
    rotated password ends the session on the old one at the next reload."""
    await _campus(conn)
    out = tmp_path / "broker"
    await asyncio.to_thread(_credentials, fresh_db, out)
    before = _passwords(out)
    with _cluster(tmp_path / "nats", out) as cluster:
        staying = await asyncio.to_thread(_probe, cluster, 0, "term-b", before["term-b"])
        leaving = await asyncio.to_thread(_probe, cluster, 1, "term-a", before["term-a"])
        try:
            await conn.execute("DELETE FROM devices WHERE id = 'term-a'")
            await conn.execute(
                "INSERT INTO devices (id, door_id, kind) VALUES ('term-c', 'lab-c', 'terminal')"
            )
            pid_file = tmp_path / "n0.pid"
            proc = cluster.procs[0]
            assert proc is not None
            pid_file.write_text(f"{proc.pid}\n")
            said = await asyncio.to_thread(
                _credentials, fresh_db, out, "--broker-pid-file", str(pid_file)
            )
            assert "removed term-a" in said and "added term-c" in said
            assert "broker reloaded" in said
            text = (out / NATS_ACCOUNTS).read_text()
            assert '"term-a"' not in text and '"term-c"' in text
            for node in (1, 2):
                cluster.reload(node)
            for _ in range(100):
                if not leaving.client.is_connected():
                    break
                await asyncio.sleep(0.05)
            assert not leaving.client.is_connected()
            for node in range(3):
                with pytest.raises(ConnectRefused):
                    await asyncio.to_thread(_probe, cluster, node, "term-a", before["term-a"])
            after = _passwords(out)
            for node in range(3):
                newcomer = await asyncio.to_thread(_probe, cluster, node, "term-c", after["term-c"])
                newcomer.close()
            assert staying.client.is_connected()
            assert staying.subscribe(f"{PREFIX}/devices/term-b/commands") == 1
            for node in range(3):
                assert (
                    "Reloaded server configuration"
                    in (cluster.workdir / f"n{node}.log").read_text()
                )

            # A rotated password: the session on the old one ends at the reload.
            said = await asyncio.to_thread(_credentials, fresh_db, out, "--rotate", "term-b")
            assert "rotated term-b" in said
            for node in range(3):
                cluster.reload(node)
            for _ in range(100):
                if not staying.client.is_connected():
                    break
                await asyncio.sleep(0.05)
            assert not staying.client.is_connected()
            with pytest.raises(ConnectRefused):
                await asyncio.to_thread(_probe, cluster, 2, "term-b", before["term-b"])
            rotated = await asyncio.to_thread(
                _probe, cluster, 2, "term-b", _passwords(out)["term-b"]
            )
            rotated.close()
        finally:
            staying.client.loop_stop()
            leaving.client.loop_stop()
