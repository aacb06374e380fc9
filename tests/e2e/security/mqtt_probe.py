"""A plain paho client in a thread, to see the broker's own answers (CONNACK, PUBACK, SUBACK)."""

from __future__ import annotations

import queue
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

TIMEOUT_S = 10.0


class ConnectRefused(Exception):
    """The broker (or the TLS handshake) refused the connection."""


@dataclass
class Probe:
    client: paho.Client
    messages: queue.Queue = field(default_factory=queue.Queue)
    _acks: dict[int, queue.Queue] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _slot(self, mid: int) -> queue.Queue:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def publish(self, topic: str, payload: bytes = b"{}", qos: int = 1) -> int:
        """The PUBACK reason code (MQTT 5): 0 accepted, 0x87 not authorized."""
        info = self.client.publish(topic, payload, qos=qos)
        return self._slot(info.mid).get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str, qos: int = 1) -> int:
        """The SUBACK reason code: the granted QoS, or 0x87 not authorized."""
        _, mid = self.client.subscribe(topic, qos)
        return self._slot(mid).get(timeout=TIMEOUT_S)

    def received(self, wait_s: float) -> list[paho.MQTTMessage]:
        got = []
        try:
            while True:
                got.append(self.messages.get(timeout=wait_s))
        except queue.Empty:
            return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int,
    *,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    host: str = "127.0.0.1",
    will_topic: str | None = None,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
) -> Probe:
    """A connected probe; ConnectRefused with the broker's reason (or the TLS error).

    `protocol` MQTTv311 for NATS: its PUBACK then carries no reason (a refused publish
    is dropped silently) and a refused subscription is SUBACK 0x80."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
    )
    probe = Probe(client)
    if username is not None:
        client.username_pw_set(username, password)
    if ca is not None:
        context = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key else None)
        client.tls_set_context(context)
    if will_topic:
        client.will_set(will_topic, b'{"online": false}', qos=1, retain=True)
    connected: queue.Queue = queue.Queue()
    client.on_connect = lambda c, u, f, reason, p: connected.put(reason)
    client.on_disconnect = lambda c, u, f, reason, p: connected.put(reason)
    client.on_publish = lambda c, u, mid, reason, p: probe._slot(mid).put(reason.value)
    client.on_subscribe = lambda c, u, mid, reasons, p: probe._slot(mid).put(reasons[0].value)
    client.on_message = lambda c, u, msg: probe.messages.put(msg)
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectRefused(f"TLS/TCP: {exc!r}") from None
    client.loop_start()
    try:
        reason = connected.get(timeout=TIMEOUT_S)
    except queue.Empty:
        client.loop_stop()
        raise ConnectRefused("no CONNACK") from None
    if reason.is_failure:
        client.loop_stop()
        raise ConnectRefused(str(reason))
    return probe
