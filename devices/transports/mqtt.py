"""An MQTT client driven by the asyncio event loop.

paho-mqtt does the protocol; its socket is registered with the loop
(`add_reader`/`add_writer`, as Home Assistant does), so there is no network
thread and no cross-thread queue on the hot path. Messages read in one socket
wake-up are handed over as one batch, outside paho's callback lock, so the
receiver's replies are coalesced into few writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_LOGGER = logging.getLogger(__name__)

# Longest a session survives a disconnect when the broker does not cap it (MQTT 5).
SESSION_EXPIRY_S = 7 * 24 * 3600
# Reconnect delays: start small, double after each round of the broker's nodes, and stay
# short, so that after a broker crash the window in which a session is not there to take
# messages stays about a second long.
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 1.0
# A refused subscription is asked for again after this long, doubling up to the maximum.
# The maximum stays short: a door whose commands subscription is missing hears no
# decision, and after a NATS leader election a 30 s wait left doors deaf that long after
# the cluster was well again; a refused SUBSCRIBE every 5 s costs the broker little.
RESUBSCRIBE_FIRST_S = 0.5
RESUBSCRIBE_MAX_S = 5.0
# SUBACK codes that asking again will not change (MQTT 5): not authorized, a topic filter
# the broker does not take, shared subscriptions or wildcards not supported.
_FINAL_SUBACK_REFUSALS = frozenset({0x87, 0x8F, 0x9E, 0xA1, 0xA2})


@dataclass(slots=True)
class Outage:
    """The last unexpected loss of the connection and the way back, on the perf_counter
    clock: when it was lost, connect attempts since, the CONNACK that ended it, and when
    every subscription was granted again (a clustered broker may refuse some for a while).
    """

    lost_at: float
    attempts: int = 0
    connack_at: float | None = None
    subscribed_at: float | None = None


class MqttError(Exception):
    """The broker refused or dropped the connection."""


class Protocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


@dataclass(frozen=True, slots=True)
class Message:
    """One message as received; `mid` is what `ack` takes when acks are manual.

    `dup` is set when the broker sends the message again to a resumed session (it may
    have been handled before the connection was lost); `expiry_s` is what is left of
    an MQTT 5 message expiry interval, None when the message has none.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool = False
    expiry_s: int | None = None


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One broker node of a (clustered) broker address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker is: one node, or the nodes of one clustered broker, in the order tried.

    Every node shares the scheme, the account, the protocol and the TLS files: they are
    one broker (Mosquitto is one node; a NATS or EMQX cluster is several).
    """

    endpoints: tuple[Endpoint, ...]
    tls: bool
    username: str | None
    password: str | None
    protocol: Protocol
    # TLS (mqtts:// only): the CA that signed the broker's certificate (None: the system's
    # trust store) and this client's own certificate and key, for a broker listener that
    # asks for one (`require_certificate`); `key_file` None means the key is in `cert_file`.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def host(self) -> str:
        """The first node's host (the only one of a single broker)."""
        return self.endpoints[0].host

    @property
    def port(self) -> int:
        return self.endpoints[0].port

    def __str__(self) -> str:
        return ",".join(str(endpoint) for endpoint in self.endpoints)

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        protocol: Protocol | str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> BrokerAddress:
        """`mqtt://[user:pass@]host:port` or `mqtts://...`; `?protocol=3.1.1` picks MQTT 3.1.1.

        Several comma-separated URLs name the nodes of one clustered broker, tried in turn:
        `mqtt://u:p@n1:1883,mqtt://n2:1883`. They share one scheme; the account and the
        query may be written on any of them, but never differently on two.

        For mqtts:// the query may also name `ca`, `cert` and `key` files (paths), which the
        keyword arguments override: `mqtts://term-1@host:8884?ca=ca.crt&cert=t.crt&key=t.key`.
        `protocol` (CAMPUSGATE_MQTT_PROTOCOL) must agree with a `?protocol=` of the URL.
        """
        nodes = [_parse_node(item, url) for item in url.split(",")]
        schemes = {node.scheme for node in nodes}
        if len(schemes) > 1:
            raise ValueError(
                f"bad MQTT URL list {_shown(url)!r}: the nodes of one broker share one scheme, not"
                f" {' and '.join(sorted(schemes))}"
            )
        username = _agreed(url, "user name", [n.username for n in nodes])
        password = _agreed(url, "password", [n.password for n in nodes])
        query = {
            key: _agreed(url, f"query parameter {key!r}", [n.query.get(key) for n in nodes])
            for key in sorted({key for node in nodes for key in node.query})
        }
        tls = nodes[0].scheme == "mqtts"
        chosen = _protocol(url, protocol, query.get("protocol"))
        ca_file = ca_file or query.get("ca")
        cert_file = cert_file or query.get("cert")
        key_file = key_file or query.get("key")
        if not tls and (ca_file or cert_file or key_file):
            raise ValueError(
                f"bad MQTT URL {_shown(url)!r}: CA or client certificate files need mqtts://"
            )
        if key_file and not cert_file:
            raise ValueError("a client key file needs its certificate file too")
        endpoints = tuple(Endpoint(n.host, n.port or (8883 if tls else 1883)) for n in nodes)
        if len(set(endpoints)) < len(endpoints):
            raise ValueError(f"bad MQTT URL list {_shown(url)!r}: a node is named twice")
        return cls(
            endpoints=endpoints,
            tls=tls,
            username=username,
            password=password,
            protocol=chosen,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context: the broker's certificate checked against `ca_file`
        (or the system's CAs) and its host name; a client certificate when given."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot load the MQTT TLS files (CA {self.ca_file}, certificate"
                f" {self.cert_file}, key {self.key_file}): {exc}; check the paths and that"
                " the key matches the certificate"
            ) from None
        return context


@dataclass(frozen=True, slots=True)
class _Node:
    scheme: str
    host: str
    port: int | None
    username: str | None
    password: str | None
    query: dict[str, str]


def _parse_node(item: str, whole: str) -> _Node:
    text = item.strip()
    where = (
        f"bad MQTT URL {_shown(text)!r}"
        if text == whole.strip()
        else f"bad MQTT URL {_shown(text)!r} in {_shown(whole)!r}"
    )
    if not text:
        raise ValueError(f"bad MQTT URL list {_shown(whole)!r}: an empty entry between commas")
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(
            f"{where}: expected mqtt://[user:pass@]host:port (or mqtts://), several"
            " comma-separated for the nodes of a clustered broker"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"{where}: the port must be a number from 1 to 65535 (the URLs of several"
            " nodes are separated by commas)"
        ) from None
    if parts.path not in ("", "/"):
        raise ValueError(f"{where}: an MQTT URL has no path ({parts.path!r})")
    pairs = [p.split("=", 1) for p in parts.query.split("&") if p]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"{where}: the query must be name=value pairs joined by '&'")
    return _Node(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        query={k: unquote(v) for k, v in pairs},
    )


def _shown(url: str) -> str:
    """`url` for an error message: passwords replaced by `***`."""
    return re.sub(r"(://[^:@/,]*):[^@/,]*@", r"\1:***@", url)


def _agreed(url: str, what: str, values: list[str | None]) -> str | None:
    """The one value the nodes give (None when none does); an error when two differ."""
    given = {value for value in values if value is not None}
    if len(given) > 1:
        raise ValueError(
            f"bad MQTT URL list {_shown(url)!r}: the nodes of one broker share one {what}, but"
            " two URLs give different ones"
        )
    return given.pop() if given else None


def _protocol(url: str, chosen: Protocol | str | None, in_url: str | None) -> Protocol:
    names = ", ".join(p.value for p in Protocol)
    try:
        setting = Protocol(chosen) if chosen is not None else None
        query = Protocol(in_url) if in_url is not None else None
    except ValueError:
        raise ValueError(
            f"unknown MQTT protocol {chosen or in_url!r}: use one of {names}"
        ) from None
    if setting is not None and query is not None and setting is not query:
        raise ValueError(
            f"MQTT protocol {setting.value} (CAMPUSGATE_MQTT_PROTOCOL) disagrees with"
            f" ?protocol={query.value} in {_shown(url)!r}: give it once"
        )
    return setting or query or Protocol.V5


MessageBatchHandler = Callable[[Sequence[Message]], None]

_PUBLISH, _PUBACK, _DISCONNECT = 0x30, 0x40, 0xE0


def _coalesce_out_packets(client: paho.Client) -> None:
    """Join queued packets into one buffer, so one wake-up costs one `send` instead of one each.

    On these machines a `send` that wakes the broker costs ~50 us, more than building the
    packet: a decision and its PUBACK were two. Only packets whose completion paho does not
    act on are joined (QoS 1 and 2 publishes, acks, subscribes); a QoS 0 publish (its
    on_publish) and a DISCONNECT (closing) keep their own entry. paho's queue is private,
    so anything unexpected leaves it untouched.
    """
    queue = getattr(client, "_out_packet", None)
    if queue is None or len(queue) < 2:
        return
    parts: list[bytes] = []
    taken = 0
    for packet in queue:
        command = packet.get("command", 0) & 0xF0
        if command == _DISCONNECT or (command == _PUBLISH and packet.get("qos") == 0):
            break
        parts.append(bytes(packet["packet"][packet["pos"] :]))
        taken += 1
    if taken < 2:
        return
    for _ in range(taken):
        queue.popleft()
    joined = b"".join(parts)
    queue.appendleft(
        {
            "command": _PUBACK,
            "mid": 0,
            "qos": 1,
            "pos": 0,
            "to_process": len(joined),
            "packet": joined,
            "info": None,
        }
    )


class MqttClient:
    """One MQTT session on the running event loop.

    `on_messages` receives every batch of messages read in one wake-up. With
    `manual_ack=True` the caller acknowledges each QoS 1 message by `ack(msg)`
    once it has made the message durable; until then the broker redelivers it
    after a reconnect.

    Back-pressure is flow control, not a closed tap: the socket is always read, so
    keepalive, CONNACK and acks keep flowing. `receive_maximum` (MQTT 5) caps the
    QoS 1 messages the broker sends before they are acknowledged, so unacknowledged
    messages are the brake; `hold()` stops handing messages over (they wait here,
    at most `receive_maximum` of them) until `release()`. MQTT 3.1.1 has no Receive
    Maximum: the broker's own cap is the brake then (NATS `max_ack_pending` per
    subscription, Mosquitto `max_inflight_messages`).

    An address with several nodes (a clustered broker) is served by one node at a time:
    when the connection is lost, or a connect fails, the client moves on to the next
    node (`broker_moves` counts that), with the same short backoff as a reconnect.
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        on_messages: MessageBatchHandler | None = None,
        clean_start: bool = True,
        manual_ack: bool = False,
        will: Will | None = None,
        keepalive: int = 30,
        subscriptions: Sequence[tuple[str, int]] = (),
        max_inflight: int = 0,
        on_connected: Callable[[], None] | None = None,
        receive_maximum: int | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        on_lost: Callable[[int | None], bool] | None = None,
        on_subscribed: Callable[[str], None] | None = None,
    ) -> None:
        """`on_lost(reason)` is asked on an unexpected disconnect whether to reconnect;
        `reason` is the MQTT 5 reason code (0x8E: the session was taken over by another
        client with this id), None under MQTT 3.1.1, which gives none.
        `on_subscribed(filter)` is called whenever the broker grants a subscription: after
        every connect, and when one it refused is granted on a later request."""
        if receive_maximum is not None and not 1 <= receive_maximum <= 65535:
            raise ValueError(f"receive_maximum must be 1..65535, not {receive_maximum}")
        self.address = address
        self.client_id = client_id
        self._on_messages = on_messages
        self._clean_start = clean_start
        self._keepalive = keepalive
        self._subscriptions = list(subscriptions)
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._on_subscribed = on_subscribed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._inbox: list[Message] = []
        self._connected = asyncio.Event()
        # Set once the broker has confirmed every subscription of the first connection:
        # until then a message published to this client's topics may find nobody.
        self._subscribed = asyncio.Event()
        self._unacked_subscribes: set[int] = set()
        # SUBSCRIBE packet id -> (filter, qos), to try a refused subscription again.
        self._subscribing: dict[int, tuple[str, int]] = {}
        self._refusals: dict[str, int] = {}  # filter -> refusals in a row
        self._connect_error: MqttError | None = None
        self._connecting = False
        self._closing = False
        self._misc_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._sock: Any = None
        self._held = False
        self._stash: list[Message] = []
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._expiry_props: dict[int, Properties] = {}
        self.connects = 0  # successful CONNACKs; more than one means the session reconnected
        self._node = 0  # index in address.endpoints of the node used (or tried) now
        self.broker_moves = 0  # moves to another node of a clustered broker
        self.refused_subscriptions = 0  # SUBACK failures (logged)
        self.outage: Outage | None = None  # the last unexpected loss and recovery
        self._ungranted: set[str] = set()  # filters not granted since the last CONNACK
        if receive_maximum is not None and address.protocol is Protocol.V311:
            _LOGGER.info(
                "MQTT %s speaks 3.1.1, which has no Receive Maximum: the broker's own limit"
                " on unacknowledged messages applies (NATS max_ack_pending, Mosquitto"
                " max_inflight_messages)",
                client_id,
            )

        v5 = address.protocol is Protocol.V5
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else clean_start,
            manual_ack=manual_ack,
            reconnect_on_failure=False,
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        if address.tls:
            self._client.tls_set_context(address.tls_context())
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_socket_open = self._socket_open
        self._client.on_socket_close = self._socket_close
        self._client.on_socket_register_write = self._socket_register_write
        self._client.on_socket_unregister_write = self._socket_unregister_write

    # ---- public surface ---------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def endpoint(self) -> Endpoint:
        """The broker node this client is connected to (or tries next)."""
        return self.address.endpoints[self._node]

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises MqttError when the broker is unreachable or refuses.

        With several nodes, each is tried once in turn (`timeout` each) before giving up.
        """
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        failures: list[str] = []
        for attempt in range(len(self.address.endpoints)):
            if attempt:
                self._move_on(failures[-1])
            try:
                await self._connect_once(timeout)
                break
            except MqttError as exc:
                failures.append(str(exc))
        else:
            if len(failures) == 1:
                raise MqttError(failures[0])
            raise MqttError(f"no node of the broker {self.address} answered: {'; '.join(failures)}")
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            raise MqttError(
                f"broker at {self.endpoint} did not confirm the"
                f" subscriptions of {self.client_id} within {timeout} s"
            ) from None
        self._misc_task = asyncio.create_task(self._misc_loop(), name=f"mqtt-misc-{self.client_id}")

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry_s: int | None = None,
    ) -> None:
        """Queue a message; paho keeps it and resends after a reconnect at QoS 1.

        `expiry_s` is the MQTT 5 message expiry interval: the broker delivers the
        message to nobody once it is that old (ignored under MQTT 3.1.1).
        """
        props = None
        if expiry_s is not None and self.address.protocol is Protocol.V5:
            props = self._expiry_props.get(expiry_s)
            if props is None:
                props = Properties(PacketTypes.PUBLISH)
                props.MessageExpiryInterval = expiry_s
                self._expiry_props[expiry_s] = props
        self._client.publish(topic, payload, qos=qos, retain=retain, properties=props)

    def ack(self, message: Message) -> None:
        """Acknowledge a message received with manual acks."""
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscriptions.append((topic, qos))
        if self.is_connected:
            self._send_subscribe(topic, qos)

    def _send_subscribe(self, topic: str, qos: int) -> int:
        mid: int = self._client.subscribe(topic, qos)[1]
        self._subscribing[mid] = (topic, qos)
        return mid

    def _subscribe_again(self, topic: str, qos: int) -> None:
        if self.is_connected and not self._closing and (topic, qos) in self._subscriptions:
            _LOGGER.info("MQTT %s: subscribing to %s again", self.client_id, topic)
            self._send_subscribe(topic, qos)

    def unsubscribe(self, topic: str) -> None:
        self._subscriptions = [(t, q) for t, q in self._subscriptions if t != topic]
        self._ungranted.discard(topic)
        if self.is_connected:
            self._client.unsubscribe(topic)

    def set_handler(self, on_messages: MessageBatchHandler) -> None:
        """Set the receiver of message batches (before `connect`)."""
        self._on_messages = on_messages

    def hold(self) -> None:
        """Stop handing messages over (back-pressure) while still reading the socket.

        The connection stays alive (keepalive, acks, a reconnect's CONNACK are read);
        messages read meanwhile wait here, and since nothing is acknowledged the broker
        stops sending once `receive_maximum` are outstanding and queues the rest.
        """
        self._held = True

    def release(self) -> None:
        """Hand over what waited during `hold()` and resume normal delivery."""
        self._held = False
        if self._stash:
            batch, self._stash = self._stash, []
            self._deliver(batch)

    @property
    def held(self) -> int:
        """Messages read but not handed over because of `hold()`."""
        return len(self._stash)

    async def close(self) -> None:
        """Disconnect cleanly (no last will) and stop the background tasks."""
        self._closing = True
        for task in (self._misc_task, self._reconnect_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._client.is_connected():
            self._client.disconnect()
            self._client.loop_write()
        self._detach_socket()
        self._connected.clear()

    async def drop(self) -> None:
        """Close the socket without DISCONNECT, as a crash would (the broker sends the will)."""
        self._closing = True
        for task in (self._misc_task, self._reconnect_task):
            if task is not None:
                task.cancel()
        sock = self._client.socket()
        self._detach_socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._connected.clear()

    # ---- connection management ---------------------------------------------

    def _move_on(self, why: str) -> None:
        """Use the next node of a clustered broker (nothing to do for a single node)."""
        if len(self.address.endpoints) < 2:
            return
        before = self.endpoint
        self._node = (self._node + 1) % len(self.address.endpoints)
        self.broker_moves += 1
        _LOGGER.warning(
            "MQTT %s: broker node %s failed (%s); moving to %s",
            self.client_id,
            before,
            why,
            self.endpoint,
        )

    async def _connect_once(self, timeout: float) -> None:
        self._connected.clear()
        self._connect_error = None
        self._connecting = True
        props = None
        if self.address.protocol is Protocol.V5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self._clean_start else self._session_expiry_s
            if self._receive_maximum is not None:
                props.ReceiveMaximum = self._receive_maximum
        node = self.endpoint
        try:
            # The TCP connect may block on a remote broker: do it off the loop.
            await asyncio.wait_for(
                self._loop.run_in_executor(  # type: ignore[union-attr]
                    None,
                    lambda: self._client.connect(
                        node.host,
                        node.port,
                        keepalive=self._keepalive,
                        clean_start=self._clean_start
                        if self.address.protocol is Protocol.V5
                        else 3,
                        properties=props,
                    ),
                ),
                timeout,
            )
            await asyncio.wait_for(self._connected.wait(), timeout)
        except (OSError, TimeoutError) as exc:
            self._detach_socket()
            raise MqttError(f"cannot reach MQTT broker at {node}: {exc!r}") from None
        finally:
            self._connecting = False
        if self._connect_error is not None:
            self._connected.clear()
            self._detach_socket()
            raise self._connect_error

    async def _reconnect_loop(self, lost: str) -> None:
        """Connect again, moving through the broker's nodes, until one takes the session.

        The lost node comes last: a clustered broker serves the session from any node
        (NATS and EMQX replicate it), and the lost one may well be down.
        """
        delay = RECONNECT_FIRST_S
        why = f"connection lost: {lost}"
        nodes = len(self.address.endpoints)
        tried = 0
        while not self._closing:
            self._move_on(why)
            # Spread out: a fleet that lost the same node must not come back in lockstep
            # (NATS checks a bcrypt hash at every CONNECT).
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            tried += 1
            if self.outage is not None:
                self.outage.attempts += 1
            try:
                await self._connect_once(10.0)
                _LOGGER.info(
                    "MQTT %s reconnected to %s%s", self.client_id, self.endpoint, self._since_lost()
                )
                return
            except MqttError as exc:
                why = str(exc)
                # The backoff grows once per round of the nodes, not per attempt: after a
                # NATS node dies, a surviving node may hold a CONNECT 4 s (its JetStream
                # request timeout) and then close it, and the next node in turn is often
                # the dead one; the attempt after that should not wait longer for it.
                if tried % nodes == 0:
                    delay = min(delay * 2, RECONNECT_MAX_S)
                _LOGGER.warning(
                    "MQTT %s: %s%s; retrying in %.1f s",
                    self.client_id,
                    exc,
                    self._since_lost(),
                    delay,
                )

    def _since_lost(self) -> str:
        """For the log: how long since the connection was lost, and the attempts since."""
        if self.outage is None:
            return ""
        return (
            f" ({time.perf_counter() - self.outage.lost_at:.2f} s after the loss,"
            f" attempt {self.outage.attempts})"
        )

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._client.socket() is not None:
                self._client.loop_misc()

    # ---- paho callbacks (all on the loop thread but connect) ----------------

    def _on_loop(self, func: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            func(*args)
        else:
            self._loop.call_soon_threadsafe(func, *args)  # type: ignore[union-attr]

    def _handle_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._connect_error = MqttError(
                f"broker refused connection of {self.client_id}: {reason}"
            )
            self._on_loop(self._connected.set)
            return
        self.connects += 1
        if self.outage is not None and self.outage.connack_at is None:
            self.outage.connack_at = time.perf_counter()
        self._ungranted = {t for t, _ in self._subscriptions}
        self._subscribing.clear()
        self._unacked_subscribes = {self._send_subscribe(t, q) for t, q in self._subscriptions}
        if not self._unacked_subscribes:
            self._on_loop(self._subscribed.set)
            self._granted("")  # nothing to subscribe: back at the CONNACK
        self._on_loop(self._connected.set)
        if self._on_connected is not None:
            self._on_loop(self._on_connected)

    def _handle_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        self._detach_socket()
        if self._closing:
            return
        if self._connecting and self._connect_error is None:
            # Closed before the CONNACK (e.g. a proxy whose broker is down): end this attempt
            # now rather than at its timeout, so the next one comes after the short backoff.
            self._connect_error = MqttError(
                f"connection of {self.client_id} closed before the broker answered ({reason})"
            )
            self._on_loop(self._connected.set)
            return
        if self._on_lost is not None:
            code = getattr(reason, "value", None) if self.address.protocol is Protocol.V5 else None
            if not self._on_lost(code):
                _LOGGER.warning(
                    "MQTT %s lost its connection (%s); not reconnecting", self.client_id, reason
                )
                return
        _LOGGER.warning("MQTT %s lost its connection (%s); reconnecting", self.client_id, reason)
        if self.outage is None or self.outage.subscribed_at is not None:
            self.outage = Outage(lost_at=time.perf_counter())
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(str(reason)))

    def _handle_subscribe(
        self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        refused = [reason for reason in reasons if getattr(reason, "is_failure", False)]
        wanted = self._subscribing.pop(mid, None)
        if refused:
            self._refused(wanted, refused)
        elif wanted is not None:
            self._refusals.pop(wanted[0], None)
            self._granted(wanted[0])
            if self._on_subscribed is not None:
                self._on_loop(self._on_subscribed, wanted[0])
        self._unacked_subscribes.discard(mid)
        if not self._unacked_subscribes:
            self._on_loop(self._subscribed.set)

    def _granted(self, topic: str) -> None:
        self._ungranted.discard(topic)
        outage = self.outage
        if self._ungranted or outage is None or outage.subscribed_at is not None:
            return
        if outage.connack_at is None:
            return
        outage.subscribed_at = time.perf_counter()
        _LOGGER.info(
            "MQTT %s back after %.2f s: CONNACK %.2f s after the loss (%d attempts),"
            " every subscription granted %.2f s after the CONNACK",
            self.client_id,
            outage.subscribed_at - outage.lost_at,
            outage.connack_at - outage.lost_at,
            outage.attempts,
            outage.subscribed_at - outage.connack_at,
        )

    def _refused(self, wanted: tuple[str, int] | None, reasons: list[Any]) -> None:
        """A SUBACK refused the subscription `wanted`: log it and, unless the refusal is
        final (not authorized, a filter the broker does not take), ask again later.

        A clustered broker refuses for passing reasons: NATS answers 0x80 when making the
        subscription's JetStream consumer times out (a busy cluster, a leader election).
        MQTT 3.1.1 has only 0x80, so there every refusal is tried again, at most 5 s apart.
        """
        self.refused_subscriptions += len(reasons)
        topic = wanted[0] if wanted else "?"
        final = any(getattr(r, "value", 0x80) in _FINAL_SUBACK_REFUSALS for r in reasons)
        count = self._refusals[topic] = self._refusals.get(topic, 0) + 1
        delay = min(RESUBSCRIBE_FIRST_S * 2 ** (count - 1), RESUBSCRIBE_MAX_S)
        _LOGGER.error(
            "MQTT %s: the broker at %s refused the subscription to %s (%s)%s",
            self.client_id,
            self.endpoint,
            topic,
            ", ".join(str(reason) for reason in reasons),
            "; check its ACL" if final else f"; asking again in {delay:.1f} s",
        )
        if wanted is not None and not final and self._loop is not None:
            self._on_loop(self._loop.call_later, delay, self._subscribe_again, *wanted)

    def _handle_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        expiry = getattr(msg.properties, "MessageExpiryInterval", None) if msg.properties else None
        self._inbox.append(
            Message(msg.topic, msg.payload, msg.qos, bool(msg.retain), msg.mid, msg.dup, expiry)
        )

    def _socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._on_loop(self._attach_socket, sock)

    def _socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._on_loop(self._detach_socket)

    def _socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch_write, sock)

    def _socket_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch_write, sock)

    # ---- socket plumbing -----------------------------------------------------

    def _attach_socket(self, sock: Any) -> None:
        if self._sock is not None and self._sock is not sock:
            self._detach_socket()
        self._sock = sock
        # Always read, even while held: a reconnect must see its CONNACK (see `hold`).
        self._loop.add_reader(sock, self._readable)  # type: ignore[union-attr]
        if self._client.want_write():
            self._watch_write(sock)

    def _detach_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None or self._loop is None:
            return
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    def _watch_write(self, sock: Any) -> None:
        if self._sock is not None:
            self._loop.add_writer(self._sock, self._writable)  # type: ignore[union-attr]

    def _unwatch_write(self, sock: Any) -> None:
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self._sock)  # type: ignore[union-attr]

    def _writable(self) -> None:
        _coalesce_out_packets(self._client)
        self._client.loop_write()

    def _readable(self) -> None:
        rc = self._client.loop_read(max_packets=256)
        # TLS: bytes already decrypted into the SSL object are invisible to the selector
        # (the socket is no longer readable), so read them now, as paho's own loop does.
        sock = self._client.socket()
        pending = getattr(sock, "pending", None)
        while (
            pending is not None
            and pending() > 0
            and rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)
        ):
            rc = self._client.loop_read(max_packets=256)
            sock = self._client.socket()
            pending = getattr(sock, "pending", None)
        if self._inbox:
            batch, self._inbox = self._inbox, []
            if self._held:
                self._stash.extend(batch)
            else:
                self._deliver(batch)
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            _LOGGER.debug("MQTT %s loop_read returned %s", self.client_id, rc)

    def _deliver(self, batch: list[Message]) -> None:
        if self._on_messages is None:
            return
        try:
            self._on_messages(batch)
        except Exception:  # the receiver's bug must not kill the connection
            _LOGGER.exception(
                "MQTT %s: message handler failed on a batch of %d", self.client_id, len(batch)
            )
