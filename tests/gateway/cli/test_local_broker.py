"""The demo's own broker (issue 16, point 4): Mosquitto on a free port when installed,
amqtt otherwise, and a gateway that holds its PUBACKs is served quietly by both."""

from __future__ import annotations

import asyncio
import logging

import click
import pytest

from devices.transports.mqtt import Message, MqttClient
from gateway.cli import runtime
from gateway.cli.local_broker import LocalAmqtt, LocalMosquitto
from gateway.settings import Settings

HOLD_S = 6.5  # longer than amqtt's fixed 5 s wait for a PUBACK


async def _held_acks(broker: runtime.Broker, n: int = 5) -> list[bytes]:
    """A subscriber that acknowledges each message only HOLD_S after it arrives (as the
    gateway does while a card waits for its temperature) still gets every message."""
    got: list[bytes] = []
    held: list[Message] = []

    def on_messages(batch):
        for message in batch:
            got.append(message.payload)
            held.append(message)

    sub = MqttClient(
        broker.address,
        client_id="held-acks",
        on_messages=on_messages,
        manual_ack=True,
        subscriptions=[("t/events", 1)],
    )
    pub = MqttClient(broker.address, client_id="publisher")
    await sub.connect()
    await pub.connect()
    try:
        await asyncio.sleep(0.3)
        for i in range(n):
            pub.publish("t/events", f"m{i}".encode(), qos=1)
        for _ in range(100):
            if len(got) == n:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(HOLD_S)
        for message in held:
            sub.ack(message)
        await asyncio.sleep(0.3)
    finally:
        await pub.close()
        await sub.close()
    return got


async def test_mosquitto_on_a_free_port_and_stopped_on_close(tmp_path, caplog):
    broker = await runtime.open_broker(Settings(data_dir=tmp_path))
    assert isinstance(broker.embedded, LocalMosquitto)
    assert broker.kind.startswith("mosquitto on 127.0.0.1:")
    process = broker.embedded.process
    try:
        conf = (tmp_path / "mosquitto" / "mosquitto.conf").read_text()
        assert f"listener {broker.address.port} 127.0.0.1" in conf
        assert "max_inflight_messages 0" in conf
        got = await _held_acks(broker)
        assert sorted(got) == [f"m{i}".encode() for i in range(5)]
    finally:
        await broker.close()
    assert process is not None and process.poll() is not None


async def test_amqtt_fallback_counts_the_puback_timeouts_instead_of_tracebacks(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    broker = await runtime.open_broker(Settings(data_dir=tmp_path), local="amqtt")
    assert isinstance(broker.embedded, LocalAmqtt)
    try:
        got = await _held_acks(broker)
        assert sorted(got) == [f"m{i}".encode() for i in range(5)]  # delivered all the same
    finally:
        await broker.close()
    # The cause: amqtt waits a fixed 5 s for each PUBACK (reported when the task is reaped).
    assert broker.embedded.puback_timeouts.count == 5
    assert not [r for r in caplog.records if "PUBACK" in r.getMessage() and r.exc_info]
    assert not [
        r for r in caplog.records if r.getMessage().startswith("Timeout waiting for PUBACK")
    ]
    assert any("amqtt gave up waiting for" in r.getMessage() for r in caplog.records)


async def test_falls_back_to_amqtt_without_a_mosquitto_binary(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "find_mosquitto", lambda: None)
    broker = await runtime.open_broker(Settings(data_dir=tmp_path))
    try:
        assert isinstance(broker.embedded, LocalAmqtt)
    finally:
        await broker.close()
    with pytest.raises(click.ClickException, match="no mosquitto binary found"):
        await runtime.open_broker(Settings(data_dir=tmp_path), local="mosquitto")


async def test_a_mosquitto_that_cannot_start_falls_back(tmp_path):
    broken = tmp_path / "mosquitto"
    broken.write_text("#!/bin/sh\necho 'Error: no such option' >&2\nexit 3\n")
    broken.chmod(0o755)
    from gateway.cli import local_broker

    with pytest.raises(local_broker.MosquittoError, match="exited with 3"):
        local_broker.LocalMosquitto(str(broken), tmp_path / "data" / "m").start()


def _mqtt5(port: int, client_id: str, username: str | None = None, password: str | None = None):
    """A paho MQTT 5 client: (client, CONNACK reason, PUBACK reasons by mid)."""
    import queue

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)
    connack: queue.Queue = queue.Queue()
    pubacks: queue.Queue = queue.Queue()
    client.on_connect = lambda c, u, f, reason, p: connack.put(reason)
    client.on_publish = lambda c, u, mid, reason, p: pubacks.put(reason.value)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    return client, connack.get(timeout=10), pubacks


def test_mosquitto_with_credentials_refuses_anonymous_wrong_and_foreign_publishes(tmp_path):
    """Per-device passwords and ACL (issue 12): anonymous clients and wrong passwords are
    refused at CONNECT; a device publishing on another device's events gets PUBACK 0x87."""
    from gateway.cli.local_broker import find_mosquitto
    from gateway.services.broker_credentials import read_secrets, write_credentials

    creds = tmp_path / "creds"
    write_credentials(creds, ["term-a", "term-b"], prefix="campus")
    passwords = {d: p for d, (_, p) in read_secrets(creds / "device-secrets.csv").items()}
    binary = find_mosquitto()
    assert binary is not None, "mosquitto must be installed for this test"
    broker = LocalMosquitto(binary, tmp_path / "m", credentials=creds)
    broker.start()
    clients = []
    try:
        conf = (tmp_path / "m" / "mosquitto.conf").read_text()
        assert "allow_anonymous false" in conf and "allow_anonymous true" not in conf
        for user, password in ((None, None), ("term-a", "wrong"), ("nobody", "x")):
            client, reason, _ = _mqtt5(broker.port, f"probe-{user}", user, password)
            clients.append(client)
            assert reason.is_failure, (user, reason)
        device_a, reason, pubacks = _mqtt5(broker.port, "term-a", "term-a", passwords["term-a"])
        clients.append(device_a)
        assert not reason.is_failure
        device_a.publish("campus/devices/term-b/events", b'{"forged": 1}', qos=1)
        assert pubacks.get(timeout=10) == 0x87  # not authorized
        device_a.publish("campus/devices/term-a/events", b"{}", qos=1)
        assert pubacks.get(timeout=10) in (0x00, 0x10)  # accepted (maybe no subscriber)
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()
        broker.stop()


async def test_the_demo_says_plainly_what_its_broker_enforces(tmp_path):
    amqtt = await runtime.open_broker(Settings(data_dir=tmp_path), local="amqtt")
    try:
        assert "amqtt cannot enforce device identities" in amqtt.identity_note
    finally:
        await amqtt.close()
    mosquitto = await runtime.open_broker(Settings(data_dir=tmp_path), local="mosquitto")
    try:
        assert "mosquitto accepts anonymous clients" in mosquitto.identity_note
        mosquitto.embedded.credentials = tmp_path  # as a broker started with credentials
        assert mosquitto.identity_note == "broker: mosquitto with per-device passwords and ACL"
    finally:
        await mosquitto.close()


async def test_the_demo_probe_fails_on_a_broker_that_lets_anyone_in(tmp_path, mqtt_url):
    """The demo's identity probe passes against its Mosquitto started with the accounts,
    and fails (so the showcase fails) against one that accepts anonymous clients."""
    from devices.transports.mqtt import BrokerAddress
    from gateway.cli.demo_identity import DemoAccounts, probe_enforcement
    from gateway.cli.local_broker import find_mosquitto
    from gateway.services.broker_credentials import read_secrets, write_credentials

    creds = tmp_path / "creds"
    await asyncio.to_thread(write_credentials, creds, ["term-a", "term-b"], prefix="campus")
    accounts = DemoAccounts(
        creds, {d: p for d, (_, p) in read_secrets(creds / "device-secrets.csv").items()}, {}
    )
    binary = find_mosquitto()
    assert binary is not None, "mosquitto must be installed for this test"
    broker = LocalMosquitto(binary, tmp_path / "m", credentials=creds)
    await asyncio.to_thread(broker.start)
    try:
        address = BrokerAddress.parse(f"mqtt://127.0.0.1:{broker.port}")
        enforced = await probe_enforcement(address, accounts, "campus", "term-a", "term-b")
    finally:
        await asyncio.to_thread(broker.stop)
    assert enforced.ok, str(enforced)
    assert [c.got for c in enforced.checks] == [
        "refused",
        "refused",
        "accepted",
        "not authorized",
    ]
    open_broker = BrokerAddress.parse(mqtt_url)  # the session's broker: anonymous, no ACL
    lax = await probe_enforcement(open_broker, accounts, "campus", "term-a", "term-b")
    assert not lax.ok
    assert str(lax).startswith("FAIL broker enforces device identities")
    assert "a client without credentials: expected refused, got accepted" in str(lax)
