"""Device identity at a real Mosquitto: each device confined to its own topics (issue 12)."""

from __future__ import annotations

import pytest
from broker_identity import PREFIX, BrokerFiles
from mqtt_probe import ConnectRefused, Probe, connect
from secure_broker import SecureBroker

NOT_AUTHORIZED = 0x87
ACCEPTED = (0x00, 0x10)  # success, or "no matching subscribers"


def _as(broker: SecureBroker, files: BrokerFiles, user: str, client_id: str | None = None) -> Probe:
    """`user` on its listener: devices on the device listener, services on theirs."""
    port = broker.service_port if user.startswith("campusgate-") else broker.device_port
    return connect(
        port,
        client_id=client_id or user,
        username=user,
        password=files.passwords[user],
        ca=files.ca,
    )


@pytest.fixture
def gateway_probe(secure_broker: SecureBroker, broker_files: BrokerFiles):  # type: ignore[no-untyped-def]
    probe = _as(secure_broker, broker_files, "campusgate-gateway", "gw-acl-test")
    yield probe
    probe.close()


@pytest.mark.parametrize("leaf", ["events", "state", "commands"])
def test_a_device_cannot_publish_on_another_devices_topics(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe, leaf: str
) -> None:
    """PUBACK 0x87 (MQTT 5), and nothing reaches a subscriber of B's topic."""
    # The gateway's account may read events and state; for commands, B itself listens.
    listener = gateway_probe if leaf != "commands" else _as(secure_broker, broker_files, "term-b")
    assert listener.subscribe(f"{PREFIX}/devices/term-b/{leaf}") == 1
    device_a = _as(secure_broker, broker_files, "term-a")
    try:
        assert device_a.publish(f"{PREFIX}/devices/term-b/{leaf}", b'{"forged": 1}') == (
            NOT_AUTHORIZED
        )
        assert [m.payload for m in listener.received(0.5)] == []
    finally:
        device_a.close()
        if listener is not gateway_probe:
            listener.close()
    assert "Denied PUBLISH from term-a" in secure_broker.log_text()


def test_a_device_publishes_its_own_events_and_state_to_the_gateway(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    assert gateway_probe.subscribe(f"$share/g/{PREFIX}/devices/+/events") == 1
    assert gateway_probe.subscribe(f"{PREFIX}/devices/+/state") == 1
    device_a = _as(secure_broker, broker_files, "term-a")
    try:
        assert device_a.publish(f"{PREFIX}/devices/term-a/events", b'{"e": 1}') in ACCEPTED
        assert device_a.publish(f"{PREFIX}/devices/term-a/state", b'{"online": true}') in ACCEPTED
        got = {m.topic: m.payload for m in gateway_probe.received(0.5)}
        assert got == {
            f"{PREFIX}/devices/term-a/events": b'{"e": 1}',
            f"{PREFIX}/devices/term-a/state": b'{"online": true}',
        }
    finally:
        device_a.close()


def test_a_device_cannot_read_another_devices_commands(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    """Mosquitto 2.0's ACL file grants every SUBSCRIBE (SUBACK success) and checks `read`
    on delivery: A's subscription to B's commands (or to all) never delivers one."""
    device_a = _as(secure_broker, broker_files, "term-a")
    device_b = _as(secure_broker, broker_files, "term-b")
    try:
        device_a.subscribe(f"{PREFIX}/devices/term-b/commands")
        device_a.subscribe(f"{PREFIX}/devices/+/commands")
        device_a.subscribe("#")
        assert device_b.subscribe(f"{PREFIX}/devices/term-b/commands") == 1
        assert gateway_probe.publish(f"{PREFIX}/devices/term-b/commands", b'{"to": "b"}') == 0
        assert gateway_probe.publish(f"{PREFIX}/devices/term-a/commands", b'{"to": "a"}') == 0
        assert [m.payload for m in device_b.received(0.5)] == [b'{"to": "b"}']
        # A gets its own command (through its '+' and '#' subscriptions), never B's.
        assert {m.payload for m in device_a.received(0.3)} == {b'{"to": "a"}'}
    finally:
        device_a.close()
        device_b.close()


def test_devices_cannot_send_commands_or_alerts(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    device_a = _as(secure_broker, broker_files, "term-a")
    try:
        assert device_a.publish(f"{PREFIX}/devices/term-a/commands") == NOT_AUTHORIZED
    finally:
        device_a.close()
    device_a = _as(secure_broker, broker_files, "term-a")  # the broker drops a denied client
    try:
        assert device_a.publish(f"{PREFIX}/alerts/outsider") == NOT_AUTHORIZED
    finally:
        device_a.close()


def test_a_password_account_cannot_pose_as_a_device_by_client_id(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    """The ACL keys on the authenticated username (%u), not the chosen client id."""
    posing = _as(secure_broker, broker_files, "campusgate-integration", client_id="term-b")
    try:
        assert posing.publish(f"{PREFIX}/devices/term-b/events") == NOT_AUTHORIZED
    finally:
        posing.close()


def test_the_integration_account_reads_alerts_only(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    integration = _as(secure_broker, broker_files, "campusgate-integration")
    try:
        integration.subscribe(f"{PREFIX}/alerts/#")
        integration.subscribe(f"{PREFIX}/devices/+/events")
        assert gateway_probe.publish(f"{PREFIX}/alerts/fever", b'{"kind": "fever"}') == 0
        device_b = _as(secure_broker, broker_files, "term-b")
        device_b.publish(f"{PREFIX}/devices/term-b/events", b"{}")
        device_b.close()
        assert [m.topic for m in integration.received(0.5)] == [f"{PREFIX}/alerts/fever"]
        assert integration.publish(f"{PREFIX}/alerts/fever") == NOT_AUTHORIZED
    finally:
        integration.close()


@pytest.mark.parametrize("listener", ["service", "device"])
@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("term-a", "not-the-password"), ("term-a", ""), ("nobody", "x")],
    ids=["anonymous", "wrong-password", "empty-password", "unknown-user"],
)
def test_a_client_without_valid_credentials_cannot_connect(
    secure_broker: SecureBroker,
    broker_files: BrokerFiles,
    username: str | None,
    password: str | None,
    listener: str,
) -> None:
    port = getattr(secure_broker, f"{listener}_port")
    with pytest.raises(ConnectRefused, match=r"Not authorized|Bad user name or password"):
        connect(
            port,
            client_id="intruder",
            username=username,
            password=password,
            ca=broker_files.ca,
        )


def test_a_device_cannot_log_in_on_the_service_listener(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    """Where client ids are not bound to usernames, only the service accounts exist."""
    with pytest.raises(ConnectRefused, match="Not authorized"):
        connect(
            secure_broker.service_port,
            client_id="term-b",
            username="term-a",
            password=broker_files.passwords["term-a"],
            ca=broker_files.ca,
        )


def test_a_device_claiming_anothers_client_id_does_not_take_its_session(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    """On the device listeners the client id is the username: term-a asking for "term-b"
    connects as term-a, and term-b stays connected and keeps getting its commands."""
    device_b = _as(secure_broker, broker_files, "term-b")
    posing = _as(secure_broker, broker_files, "term-a", client_id="term-b")
    try:
        assert device_b.subscribe(f"{PREFIX}/devices/term-b/commands") == 1
        assert gateway_probe.publish(f"{PREFIX}/devices/term-b/commands", b"still") == 0
        assert [m.payload for m in device_b.received(0.5)] == [b"still"]
        assert device_b.client.is_connected()
        assert posing.publish(f"{PREFIX}/devices/term-b/events") == NOT_AUTHORIZED
    finally:
        device_b.close()
        posing.close()


def test_only_the_gateway_publishes_the_signing_key_and_every_device_reads_it(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    """Signed commands: terminals pin the key the gateway publishes on P/gateway/signing-key;
    a device must not be able to publish a key of its own there."""
    topic = f"{PREFIX}/gateway/signing-key"
    device_a = _as(secure_broker, broker_files, "term-a")
    try:
        assert device_a.subscribe(topic) == 1
        assert gateway_probe.publish(topic, b'{"kid": "k1"}') in ACCEPTED
        assert [m.payload for m in device_a.received(0.5)] == [b'{"kid": "k1"}']
    finally:
        device_a.close()
    device_b = _as(secure_broker, broker_files, "term-b")
    try:
        assert device_b.publish(topic, b'{"kid": "forged"}') == NOT_AUTHORIZED
    finally:
        device_b.close()


def test_allowlists_reach_their_own_device_only_and_uploads_reach_the_gateway(
    secure_broker: SecureBroker, broker_files: BrokerFiles, gateway_probe: Probe
) -> None:
    """Offline decisions (issue 13): a door's allowlist is read by that door alone (it holds
    the card hashes), a device cannot forge one, and its uploads reach the gateway."""
    device_a = _as(secure_broker, broker_files, "term-a")
    device_b = _as(secure_broker, broker_files, "term-b")
    try:
        device_a.subscribe(f"{PREFIX}/devices/term-b/allowlist")
        device_a.subscribe(f"{PREFIX}/devices/+/allowlist")
        assert device_b.subscribe(f"{PREFIX}/devices/term-b/allowlist") == 1
        assert device_b.subscribe(f"{PREFIX}/gateway/state/+") == 1
        assert gateway_probe.subscribe(f"{PREFIX}/devices/+/uploads") == 1
        assert gateway_probe.publish(f"{PREFIX}/devices/term-b/allowlist", b'{"l": "b"}') == 0
        assert gateway_probe.publish(f"{PREFIX}/gateway/state/gw-1", b'{"online": true}') == 0
        assert device_b.publish(f"{PREFIX}/devices/term-b/uploads", b'{"u": 1}') in ACCEPTED
        assert {m.payload for m in device_b.received(0.5)} == {b'{"l": "b"}', b'{"online": true}'}
        assert [m.payload for m in device_a.received(0.3)] == []
        assert [m.payload for m in gateway_probe.received(0.5)] == [b'{"u": 1}']
    finally:
        device_a.close()
        device_b.close()
    device_a = _as(secure_broker, broker_files, "term-a")
    try:
        assert device_a.publish(f"{PREFIX}/devices/term-a/allowlist") == NOT_AUTHORIZED
    finally:
        device_a.close()
