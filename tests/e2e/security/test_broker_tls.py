"""TLS at a real Mosquitto: server verification, client certificates (issue 12)."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from broker_fixtures import free_port
from broker_identity import PREFIX, BrokerFiles
from cryptography import x509
from mqtt_probe import ConnectRefused, connect
from secure_broker import SecureBroker

from devices.transports.mqtt import BrokerAddress, MqttClient, MqttError
from gateway.settings import Settings

NOT_AUTHORIZED = 0x87


def _url(broker: SecureBroker, files: BrokerFiles, user: str) -> str:
    port = broker.service_port if user.startswith("campusgate-") else broker.device_port
    return f"mqtts://{user}:{files.passwords[user]}@127.0.0.1:{port}"


async def test_our_client_connects_over_tls_and_checks_the_brokers_certificate(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    address = BrokerAddress.parse(
        _url(secure_broker, broker_files, "term-a"), ca_file=str(broker_files.ca)
    )
    client = MqttClient(
        address, client_id="term-a", subscriptions=[(f"{PREFIX}/devices/term-a/commands", 1)]
    )
    await client.connect(timeout=10)
    assert client.is_connected
    await client.close()


@pytest.mark.parametrize("trust", ["system", "other-ca"])
async def test_a_client_trusting_another_ca_refuses_the_broker(
    secure_broker: SecureBroker, broker_files: BrokerFiles, trust: str
) -> None:
    """Server verification: a broker whose certificate the client's CA did not sign is not
    talked to (no password is sent to it)."""
    ca = None if trust == "system" else str(broker_files.dir / "other-ca" / "ca.crt")
    address = BrokerAddress.parse(_url(secure_broker, broker_files, "term-a"), ca_file=ca)
    client = MqttClient(address, client_id="term-a")
    with pytest.raises(MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.connect(timeout=10)


async def test_plain_mqtt_to_the_tls_listener_gets_nowhere(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    url = _url(secure_broker, broker_files, "term-a").replace("mqtts://", "mqtt://")
    client = MqttClient(BrokerAddress.parse(url), client_id="term-a")
    with pytest.raises(MqttError):
        await client.connect(timeout=5)


async def test_a_device_certificate_is_its_identity(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    """On the certificate listener the CN is the username: term-a's certificate may publish
    term-a's events, not term-b's, whatever client id or username it claims."""
    certs = broker_files.certs
    probe = connect(
        secure_broker.cert_port,
        client_id="term-b",
        username="term-b",  # ignored: the identity is the certificate's
        ca=broker_files.ca,
        cert=certs / "term-a.crt",
        key=certs / "term-a.key",
    )
    try:
        assert probe.publish(f"{PREFIX}/devices/term-a/events") in (0x00, 0x10)
        assert probe.publish(f"{PREFIX}/devices/term-b/events") == NOT_AUTHORIZED
    finally:
        probe.close()
    # Our transport with the same files, as a terminal would use them.
    address = BrokerAddress.parse(
        f"mqtts://127.0.0.1:{secure_broker.cert_port}?ca={broker_files.ca}"
        f"&cert={certs / 'term-a.crt'}&key={certs / 'term-a.key'}"
    )
    client = MqttClient(address, client_id="term-a")
    await client.connect(timeout=10)
    await client.close()


@pytest.mark.parametrize("which", ["expired", "foreign", "none"])
def test_an_expired_foreign_or_missing_client_certificate_is_refused(
    secure_broker: SecureBroker, broker_files: BrokerFiles, which: str
) -> None:
    """The TLS handshake fails at the broker (no CONNECT is read); a password does not help."""
    certs = broker_files.certs / which
    failures = secure_broker.log_text().count("certificate verify failed")
    if which == "expired":  # signed by the broker's CA, only too old
        cert = x509.load_pem_x509_certificate((certs / "term-a.crt").read_bytes())
        ca = x509.load_pem_x509_certificate(broker_files.ca.read_bytes())
        assert cert.issuer == ca.subject and cert.not_valid_after_utc < datetime.now(UTC)
    with pytest.raises(ConnectRefused):
        connect(
            secure_broker.cert_port,
            client_id="term-a",
            username="term-a",
            password=broker_files.passwords["term-a"],  # a password does not replace it
            ca=broker_files.ca,
            cert=certs / "term-a.crt" if which != "none" else None,
            key=certs / "term-a.key" if which != "none" else None,
        )
    if which != "none":
        assert secure_broker.log_text().count("certificate verify failed") > failures


def test_tls_file_options_are_checked(tmp_path: Path, broker_files: BrokerFiles) -> None:
    with pytest.raises(ValueError, match="need mqtts://"):
        BrokerAddress.parse(f"mqtt://h:1883?ca={broker_files.ca}")
    with pytest.raises(ValueError, match="needs its certificate"):
        BrokerAddress.parse("mqtts://h:8883", key_file="k.pem")
    missing = BrokerAddress.parse("mqtts://h:8883", ca_file=str(tmp_path / "nope.crt"))
    with pytest.raises(ValueError, match="cannot load the MQTT TLS files"):
        MqttClient(missing, client_id="x")
    with pytest.raises(ValueError, match=r"need an mqtts://"):
        Settings(mqtt_url="mqtt://h:1883", mqtt_ca_file=broker_files.ca)
    with pytest.raises(ValueError, match="no such file"):
        Settings(mqtt_url="mqtts://h:8883", mqtt_ca_file=tmp_path / "nope.crt")
    settings = Settings(mqtt_url="mqtts://h:8883", mqtt_ca_file=broker_files.ca)
    address = BrokerAddress.parse(settings.mqtt_url, **settings.mqtt_tls_files())
    assert (address.tls, address.ca_file, address.port) == (True, str(broker_files.ca), 8883)


async def test_a_burst_over_tls_is_read_whole(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    """Messages decrypted into the TLS layer but not yet parsed leave the socket quiet:
    the client must read them anyway (or it stalls until the next packet arrives)."""
    received: list[bytes] = []
    address = BrokerAddress.parse(
        _url(secure_broker, broker_files, "term-b"), ca_file=str(broker_files.ca)
    )
    client = MqttClient(
        address,
        client_id="term-b",
        subscriptions=[(f"{PREFIX}/devices/term-b/commands", 1)],
        on_messages=lambda batch: received.extend(m.payload for m in batch),
        receive_maximum=1000,
    )
    await client.connect(timeout=10)
    sender = connect(
        secure_broker.service_port,
        client_id="gw-burst",
        username="campusgate-gateway",
        password=broker_files.passwords["campusgate-gateway"],
        ca=broker_files.ca,
    )
    try:
        for i in range(300):
            sender.client.publish(f"{PREFIX}/devices/term-b/commands", b"%d" % i, qos=1)
        for _ in range(200):
            if len(received) == 300:
                break
            await asyncio.sleep(0.05)
        assert received == [b"%d" % i for i in range(300)]
    finally:
        sender.close()
        await client.close()


def _publish_packet(topic: str, payload: bytes) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode() + payload
    return bytes([0x30, len(body)]) + body  # QoS 0, body under 128 bytes


async def test_packets_sharing_one_tls_record_are_all_read(broker_files: BrokerFiles) -> None:
    """A TLS record holding several MQTT packets is decrypted whole while paho parses one
    packet per read: the rest waits inside the SSL object and the socket stays quiet.
    Mosquitto writes a record per packet, so a stand-in server (the one part here that
    is not real) sends SUBACK and two PUBLISHes in one record."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(broker_files.dir / "server.crt", broker_files.dir / "server.key")
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # CONNECT
        writer.write(bytes([0x20, 0x02, 0x00, 0x00]))  # CONNACK accepted
        await writer.drain()
        subscribe = await reader.read(1024)
        mid = subscribe[2:4]
        writer.write(
            bytes([0x90, 0x03]) + mid + b"\x00"
            + _publish_packet("t/x", b"one")
            + _publish_packet("t/x", b"two")
        )  # fmt: skip
        await writer.drain()
        await done.wait()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    received: list[bytes] = []
    address = BrokerAddress.parse(
        f"mqtts://127.0.0.1:{port}?protocol=3.1.1", ca_file=str(broker_files.ca)
    )
    client = MqttClient(
        address,
        client_id="c",
        subscriptions=[("t/x", 0)],
        on_messages=lambda batch: received.extend(m.payload for m in batch),
        keepalive=60,
    )
    try:
        await client.connect(timeout=10)
        for _ in range(40):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        assert received == [b"one", b"two"]
    finally:
        done.set()
        await client.close()
        server.close()


async def test_a_tls_node_list_moves_past_a_dead_node(
    secure_broker: SecureBroker, broker_files: BrokerFiles
) -> None:
    """mqtts:// in a clustered broker's list: the first node is down, the client moves on
    and checks the next node's certificate and host name as it would alone."""
    dead = free_port()
    listed = f"mqtts://127.0.0.1:{dead}," + _url(secure_broker, broker_files, "term-a")
    address = BrokerAddress.parse(listed, ca_file=str(broker_files.ca))
    assert address.username == "term-a" and len(address.endpoints) == 2
    client = MqttClient(address, client_id="term-a")
    await client.connect(timeout=10)
    try:
        assert client.is_connected and client.endpoint.port == secure_broker.device_port
        assert client.broker_moves == 1
    finally:
        await client.close()
