"""One simulated door terminal speaking the MQTT wire protocol (CONTRACT.md section 3).

The terminal builds its JSON itself rather than through `devices.codecs`, so a
bug in the gateway's codec cannot hide behind the same bug on this side.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from devices.transports.mqtt import BrokerAddress, Message, MqttClient, Outage, Will
from firmware_sim.command_check import (
    CommandRefused,
    CommandVerifier,
    Refusal,
    public_key_from_text,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_PREFIX = "campus"
FIRMWARE = "campusgate-sim/1.0"
OFFLINE_WILL = b'{"online": false}'
DOOR_STATES = ("opened", "closed", "forced", "held_open")
FINAL_VERDICTS = ("admit", "deny")
# A decision arriving this long after the swipe opens nothing, whatever it says: the
# gateway's bound (its decisions are late past 10 s), seen from the terminal's side.
LATE_AFTER_S = 10.0
# Unanswered card events a terminal keeps to republish after a reconnect; the oldest go.
MAX_UNANSWERED = 10_000

DecisionHook = Callable[["SimTerminal", str, dict[str, Any], float], None]


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Command:
    """One message received on the terminal's commands topic."""

    received_at: float  # time.perf_counter()
    payload: bytes
    body: dict[str, Any] | None  # None when the payload was not a JSON object
    expiry_s: int | None = None  # what was left of its MQTT 5 message expiry interval
    dup: bool = False  # the broker sent it again (a resumed session)
    # Why the terminal did not act on it: a Refusal value, or "redelivered" (a DUP resend).
    refused: str | None = None

    @property
    def type(self) -> str | None:
        return None if self.body is None else self.body.get("type")


class SimTerminal:
    """A door terminal (or temperature scanner) that is one MQTT client named by its device id.

    Events are published at QoS 1 on `P/devices/{id}/events`; decisions arrive on
    `P/devices/{id}/commands`. `decision()` awaits the final admit/deny of a card
    event; every command received stays in `commands` for later checks.

    As docs/protocol.md asks of terminals, it keeps each card event until its final
    decision and republishes the unanswered ones (same event_id) after every reconnect
    (`republished`), and acts only on the first final decision per event_id (later ones
    are kept in `finals()` and counted in `repeated_finals`). `crash()` and `stop()` are
    power cycles: the unanswered events are forgotten.

    Commands are verified (docs/protocol.md, "Signed commands") against a pinned public
    key: `command_key` (base64url of the raw 32 bytes), or else the first key the gateway
    publishes retained on `P/gateway/signing-key` (trust on first use; real firmware pins
    it when provisioned). Once a key is pinned, a command that is unsigned, signed with
    another key, forged, altered, replayed or stale is refused and counted in
    `refused_commands`: it never opens the door. Before any key is pinned (or with
    `verify_commands=False`, as the bench's echo phase needs) commands are taken as they
    come. Freshness is judged on the true clock: `clock_skew_s` skews only the `ts` of
    the events the terminal sends (the gateway's clock checks), while a verifying
    terminal must keep its clock in sync, as the protocol requires.
    """

    def __init__(
        self,
        broker: BrokerAddress | str,
        device_id: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        firmware: str = FIRMWARE,
        tz: tzinfo | None = None,
        clock_skew_s: float = 0.0,
        heartbeat_every_s: float | None = None,
        on_decision: DecisionHook | None = None,
        session_expiry_s: int | None = None,
        username: str | None = None,
        password: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        command_key: str | None = None,
        verify_commands: bool = True,
    ) -> None:
        address = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
        # Broker identity (issue 12): the username is the device id unless told otherwise
        # (a lab's shared `campusgate-sim` account); `password` (from device-secrets.csv)
        # replaces the URL's; a client certificate (`campusgate certs device`) for a
        # listener that takes the certificate's CN as the username.
        self.address = replace(
            address,
            username=username or device_id,
            password=password if password is not None else address.password,
            cert_file=cert_file or address.cert_file,
            key_file=key_file or address.key_file,
        )
        self.device_id = device_id
        self.prefix = prefix
        self.firmware = firmware
        self.tz = tz
        self.clock_skew_s = clock_skew_s
        self.heartbeat_every_s = heartbeat_every_s
        self.on_decision = on_decision
        # None: a clean session per connection. A number: the broker keeps the session (and
        # the decisions queued for it) that long while the terminal is away, as real
        # terminals do to ride out a broker restart.
        self.session_expiry_s = session_expiry_s
        self.events_topic = f"{prefix}/devices/{device_id}/events"
        self.commands_topic = f"{prefix}/devices/{device_id}/commands"
        self.state_topic = f"{prefix}/devices/{device_id}/state"
        self.signing_key_topic = f"{prefix}/gateway/signing-key"
        self.verify_commands = verify_commands
        self.verifier: CommandVerifier | None = None
        if command_key is not None:
            self.pin(command_key)
        self.refused_commands: dict[str, int] = {}  # Refusal value -> count
        # A fresh prefix per instance: a restarted simulator must not repeat event ids
        # that the gateway has already logged (it would answer them as duplicates).
        self._boot = secrets.token_hex(4)
        self._seq = 0
        self._booted_at = time.monotonic()
        self.commands: list[Command] = []
        self.sent: dict[str, bytes] = {}  # event_id -> payload as first sent
        self.sent_at: dict[str, float] = {}  # event_id -> perf_counter when due (or sent)
        self.send_count: dict[str, int] = {}
        self.decided_at: dict[str, float] = {}  # event_id -> perf_counter of first final
        # Event ids whose decision opened the door: an admit neither late nor unlock_ms 0.
        self.unlocked: list[str] = []
        self.late: list[str] = []  # event ids answered with a late decision (door kept shut)
        self.redelivered = 0  # decisions the broker sent again and the terminal ignored
        # Final decisions for an event already acted on (a DUP resend, a broker that came back
        # from an older save, the answer to a republished event): shown to no one, counted.
        self.repeated_finals = 0
        # Card events still waiting for their final decision, republished with the same
        # event_id after every reconnect (docs/protocol.md, "Terminals keep unanswered
        # events"): a broker that crashes loses what it acknowledged since its last save.
        self._unanswered: dict[str, bytes] = {}
        self.republished = 0  # card events sent again after a reconnect
        # The commands subscription was granted before (in this power cycle): every later
        # grant (a reconnect, a refused subscription granted at last) republishes.
        self._commands_granted = False
        self.dropped_unanswered = 0  # forgotten unanswered events past `MAX_UNANSWERED`
        self.stale: list[str] = []  # event ids whose decision came too long after the swipe
        self.unsolicited: list[str] = []  # decisions for event ids this terminal never sent
        self._pendings: dict[str, list[dict[str, Any]]] = {}
        self._finals: dict[str, list[dict[str, Any]]] = {}
        self._watchers: dict[str, list[asyncio.Future[None]]] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._client = self._new_client()

    def _new_client(self) -> MqttClient:
        # Client id (and, unless told otherwise, username) are the device id (CONTRACT.md
        # section 3), so a broker ACL can confine the device to its own topics.
        return MqttClient(
            self.address,
            client_id=self.device_id,
            on_messages=self._handle_messages,
            will=Will(self.state_topic, OFFLINE_WILL, qos=1, retain=True),
            subscriptions=[(self.commands_topic, 1), (self.signing_key_topic, 1)],
            on_connected=self._announce_online,
            on_subscribed=self._subscribed,
            clean_start=self.session_expiry_s is None,
            session_expiry_s=self.session_expiry_s or 0,
        )

    # ---- lifecycle ---------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._client.is_connected

    @property
    def outage(self) -> Outage | None:
        """The last loss of the broker connection and the way back (None: never lost)."""
        return self._client.outage

    async def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe to the commands topic and publish the retained online state."""
        if self._client.is_connected:
            return
        await self._client.connect(timeout)
        if self.heartbeat_every_s and self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_loop(self.heartbeat_every_s), name=f"sim-heartbeat-{self.device_id}"
            )

    async def stop(self) -> None:
        """Say `online: false` (retained) and disconnect cleanly; the broker sends no will."""
        self._cancel_heartbeat()
        if self._client.is_connected:
            self._client.publish(
                self.state_topic,
                _json({"online": False, "reason": "shutdown", "ts": self._now()}),
                qos=1,
                retain=True,
            )
        self._forget_unanswered()
        await self._client.close()
        self._client = self._new_client()

    async def crash(self) -> None:
        """Drop the socket without DISCONNECT, so the broker publishes the last will."""
        self._cancel_heartbeat()
        self._forget_unanswered()
        await self._client.drop()
        self._client = self._new_client()

    async def __aenter__(self) -> SimTerminal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _cancel_heartbeat(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None

    async def _heartbeat_loop(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            if self._client.is_connected:
                self.heartbeat()

    def _announce_online(self) -> None:
        # On every (re)connect: a will may have replaced the retained state meanwhile.
        self._client.publish(
            self.state_topic,
            _json({"online": True, "firmware": self.firmware, "ts": self._now()}),
            qos=1,
            retain=True,
        )

    def _subscribed(self, topic: str) -> None:
        # Republish once the commands subscription is granted, not at the CONNACK: with a
        # clean session an answer published before the grant finds nobody, and a clustered
        # broker may refuse the subscription for seconds (NATS during a leader election)
        # while the terminal stays connected and keeps swiping.
        if topic != self.commands_topic:
            return
        if self._commands_granted:
            self._republish_unanswered()
        self._commands_granted = True

    def _republish_unanswered(self) -> None:
        """Send every card event still without a final decision again, same event_id.

        The broker acknowledged them, but a broker that crashed comes back from its last
        save (up to a second old): an event, or the decision for it, may be gone. The
        gateway decides an event_id once and answers a repeat with the stored decision.
        """
        for eid, payload in list(self._unanswered.items()):
            self.republished += 1
            self.send_count[eid] = self.send_count.get(eid, 0) + 1
            self._client.publish(self.events_topic, payload, qos=1)
        if self._unanswered:
            _LOGGER.info(
                "%s: commands subscribed again; republished %d unanswered card events",
                self.device_id,
                len(self._unanswered),
            )

    def _forget_unanswered(self) -> None:
        # The simulator's crash or stop is a power cycle: what was kept in RAM is gone.
        self._unanswered.clear()
        self._commands_granted = False

    # ---- events --------------------------------------------------------------

    def next_event_id(self) -> str:
        self._seq += 1
        return f"{self._boot}-{self._seq}"

    def _now(self) -> str:
        now = datetime.now(UTC) + timedelta(seconds=self.clock_skew_s)
        local = now.astimezone(self.tz) if self.tz is not None else now.astimezone()
        return local.isoformat(timespec="milliseconds")

    def _send(
        self, event_type: str, fields: dict[str, Any], event_id: str | None, due: float | None
    ) -> str:
        eid = event_id if event_id is not None else self.next_event_id()
        body: dict[str, Any] = {"event_id": eid, "ts": self._now(), "type": event_type}
        body.update({k: v for k, v in fields.items() if v is not None})
        payload = _json(body)
        self.sent[eid] = payload
        self.sent_at[eid] = due if due is not None else time.perf_counter()
        self.send_count[eid] = self.send_count.get(eid, 0) + 1
        if event_type in ("card", "qr") and eid not in self.decided_at:
            self._keep_unanswered(eid, payload)
        self._client.publish(self.events_topic, payload, qos=1)
        return eid

    def _keep_unanswered(self, eid: str, payload: bytes) -> None:
        self._unanswered[eid] = payload
        if len(self._unanswered) > MAX_UNANSWERED:  # bounded, as a terminal's memory is
            del self._unanswered[next(iter(self._unanswered))]
            self.dropped_unanswered += 1

    def swipe(
        self,
        card_uid: str,
        *,
        direction: str | None = None,
        celsius: float | None = None,
        event_id: str | None = None,
        due: float | None = None,
    ) -> str:
        """Publish a `card` event; returns its event id. `due` (perf_counter) backdates latency."""
        if direction not in (None, "in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        fields = {"card_uid": card_uid, "direction": direction, "celsius": celsius}
        return self._send("card", fields, event_id, due)

    def scan_qr(
        self,
        token: str,
        *,
        direction: str | None = None,
        event_id: str | None = None,
        due: float | None = None,
    ) -> str:
        """Publish a `qr` event (a visitor pass's token read by the scanner); its event id.

        The gateway answers it with one decision, exactly as for a card."""
        if direction not in (None, "in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        return self._send("qr", {"token": token, "direction": direction}, event_id, due)

    def measure(
        self,
        celsius: float,
        *,
        card_uid: str | None = None,
        event_id: str | None = None,
        due: float | None = None,
    ) -> str:
        """Publish a `temperature` reading, optionally bound to a card."""
        return self._send("temperature", {"celsius": celsius, "card_uid": card_uid}, event_id, due)

    def thermal_frame(
        self,
        width: int,
        height: int,
        celsius_f32le: bytes,
        *,
        card_uid: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Publish a `thermal_frame`: width x height little-endian float32 readings, row-major."""
        if len(celsius_f32le) != width * height * 4:
            raise ValueError(f"{len(celsius_f32le)} bytes is not a {width}x{height} float32 frame")
        fields = {
            "width": width,
            "height": height,
            "celsius_f32le": base64.b64encode(celsius_f32le).decode("ascii"),
            "card_uid": card_uid,
        }
        return self._send("thermal_frame", fields, event_id, None)

    def door(self, state: str, *, event_id: str | None = None) -> str:
        """Publish a `door` event: opened, closed, forced or held_open."""
        if state not in DOOR_STATES:
            raise ValueError(f"door state must be one of {', '.join(DOOR_STATES)}, not {state!r}")
        return self._send("door", {"state": state}, event_id, None)

    def heartbeat(self, *, event_id: str | None = None) -> str:
        uptime = round(time.monotonic() - self._booted_at, 3)
        fields = {"uptime_s": uptime, "firmware": self.firmware}
        return self._send("heartbeat", fields, event_id, None)

    def send_raw(self, payload: bytes, *, qos: int = 1) -> None:
        """Publish bytes as they are on the events topic (malformed payloads)."""
        self._client.publish(self.events_topic, payload, qos=qos)

    def resend(self, event_id: str) -> None:
        """Publish the identical payload of an earlier event again: a duplicate."""
        payload = self.sent[event_id]
        self.send_count[event_id] += 1
        self._client.publish(self.events_topic, payload, qos=1)

    # ---- decisions -----------------------------------------------------------

    def pin(self, public_key: str) -> None:
        """Pin the gateway's command-signing key (base64url or base64 of its 32 raw bytes)."""
        self.verifier = CommandVerifier(self.device_id, public_key_from_text(public_key))

    def _learn_key(self, payload: bytes) -> None:
        if self.verifier is not None or not self.verify_commands:
            return  # pinned once: a later announcement (a rotation, or an impostor) changes nothing
        try:
            announced = json.loads(payload)
            self.pin(announced["public_key"])
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            _LOGGER.warning("%s: unreadable signing-key announcement: %s", self.device_id, exc)

    def _refuse(self, cause: Refusal, detail: str) -> None:
        self.refused_commands[cause.value] = self.refused_commands.get(cause.value, 0) + 1
        _LOGGER.warning("%s: command refused (%s): %s", self.device_id, cause.value, detail)

    def _verified(self, message: Message) -> tuple[dict[str, Any] | None, str | None]:
        """(the fields to act on, None) or (None, why refused); unverified without a pinned key."""
        if self.verifier is None or not self.verify_commands:
            try:
                body = json.loads(message.payload)
            except (ValueError, UnicodeDecodeError):
                body = None
            return (body if isinstance(body, dict) else None), None
        try:
            return self.verifier.check(message.payload), None
        except CommandRefused as refused:
            if refused.cause is Refusal.REPLAYED and message.dup:
                # The broker's resend of a command already acted on (its ack was lost in a
                # broker restart), not an attack: ignored as before, not counted as refused.
                self.redelivered += 1
                return None, "redelivered"
            self._refuse(refused.cause, str(refused))
            return None, refused.cause.value

    def _handle_messages(self, batch: Sequence[Message]) -> None:
        now = time.perf_counter()
        for message in batch:
            if message.topic == self.signing_key_topic:
                self._learn_key(message.payload)
                continue
            if message.topic != self.commands_topic:
                continue
            body, refused = self._verified(message)
            if refused is not None:
                self.commands.append(
                    Command(now, message.payload, None, message.expiry_s, message.dup, refused)
                )
                continue
            if not isinstance(body, dict):
                _LOGGER.warning(
                    "%s: command is not a JSON object: %r", self.device_id, message.payload[:80]
                )
                self.commands.append(
                    Command(now, message.payload, None, message.expiry_s, message.dup)
                )
                continue
            self.commands.append(Command(now, message.payload, body, message.expiry_s, message.dup))
            if body.get("type") == "decision":
                if message.dup and body in self._finals.get(str(body.get("event_id")), ()):
                    # The broker's resend of a decision already acted on (its ack was lost
                    # in a broker restart): the door must not open twice.
                    self.redelivered += 1
                    continue
                self._record_decision(body, now)
            # Devices ignore command types they do not know (config, allowlists, ...).

    def _record_decision(self, body: dict[str, Any], now: float) -> None:
        eid = body.get("event_id")
        if not isinstance(eid, str):
            _LOGGER.warning("%s: decision without an event_id: %r", self.device_id, body)
            return
        if body.get("decision") == "pending":
            self._pendings.setdefault(eid, []).append(body)
        else:
            self._finals.setdefault(eid, []).append(body)
            if eid in self.decided_at:
                # The first final decision per event_id is the one acted on; a later one
                # (the answer to a republished event, or a broker's second delivery) is not.
                self.repeated_finals += 1
            else:
                self.decided_at[eid] = now
                self._unanswered.pop(eid, None)
                self._act(eid, body, now)
                if self.on_decision is not None:
                    self.on_decision(self, eid, body, now)
        for watcher in self._watchers.pop(eid, ()):
            if not watcher.done():
                watcher.set_result(None)

    def _act(self, eid: str, body: dict[str, Any], now: float) -> None:
        """Open the door as the decision says: a late one (or unlock_ms 0) opens nothing,
        nor does one for an event id this terminal did not send, nor one that reaches the terminal more than `LATE_AFTER_S` after its swipe
        (sent in time, it may have waited in a broken connection)."""
        if body.get("late") is True:
            self.late.append(eid)
            return
        if eid not in self.sent:
            # Not an answer to a swipe made here (signed or not, it was meant for another
            # swipe, or planted): the door opens only for a decision it is waiting for.
            self.unsolicited.append(eid)
            return
        sent = self.sent_at.get(eid)
        if sent is not None and now - sent > LATE_AFTER_S:
            self.stale.append(eid)
            return
        unlock_ms = body.get("unlock_ms")
        if body.get("decision") == "admit" and isinstance(unlock_ms, int) and unlock_ms > 0:
            self.unlocked.append(eid)

    async def _wait_until(self, event_id: str, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until `done()` holds, re-checking whenever a decision for `event_id` arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            watcher: asyncio.Future[None] = loop.create_future()
            self._watchers.setdefault(event_id, []).append(watcher)
            try:
                await asyncio.wait_for(watcher, remaining)
            except TimeoutError:
                return done()
        return True

    async def decision(self, event_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first final decision (admit or deny) for `event_id`; TimeoutError if none comes."""
        if not await self._wait_until(event_id, lambda: event_id in self._finals, timeout):
            raise TimeoutError(
                f"{self.device_id}: no final decision for event {event_id} within {timeout} s"
            )
        return self._finals[event_id][0]

    async def wait_finals(
        self, event_id: str, count: int, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait for `count` final decisions for `event_id` (after a resend); returns those that came."""
        await self._wait_until(
            event_id, lambda: len(self._finals.get(event_id, ())) >= count, timeout
        )
        return self.finals(event_id)

    async def wait_pending(self, event_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        """The first `pending` for `event_id`; None if the final came without one, or nothing did."""
        await self._wait_until(
            event_id, lambda: event_id in self._pendings or event_id in self._finals, timeout
        )
        pendings = self._pendings.get(event_id)
        return pendings[0] if pendings else None

    def pendings(self, event_id: str) -> list[dict[str, Any]]:
        """The `pending` decisions received for `event_id` (before or after the final)."""
        return list(self._pendings.get(event_id, ()))

    def finals(self, event_id: str) -> list[dict[str, Any]]:
        """Every final decision received for `event_id`; one per send is expected."""
        return list(self._finals.get(event_id, ()))

    def latency_s(self, event_id: str) -> float | None:
        """Seconds from when the event was due (or sent) to its first final decision."""
        if event_id not in self.decided_at:
            return None
        return self.decided_at[event_id] - self.sent_at[event_id]

    def problems(self) -> list[str]:
        """Deviations from 'exactly one final decision per card event sent' seen so far.

        A duplicate is answered with the original decision, so an event sent twice may
        get two finals, but they must agree. Events still undecided are not counted
        here (see `undecided`).
        """
        found = []
        for eid, finals in self._finals.items():
            sends = self.send_count.get(eid, 0)
            if sends == 0:
                found.append(f"{self.device_id}: decision for event {eid} that was never sent")
                continue
            if len(finals) > sends:
                found.append(
                    f"{self.device_id}: {len(finals)} final decisions for {eid} sent {sends}x"
                )
            verdicts = {(f.get("decision"), f.get("reason")) for f in finals}
            if len(verdicts) > 1:
                found.append(
                    f"{self.device_id}: conflicting decisions for {eid}: {sorted(verdicts)}"
                )
            if len(self._pendings.get(eid, ())) > sends:
                found.append(f"{self.device_id}: more than one pending per send for {eid}")
        return found

    def undecided(self, event_ids: Sequence[str] | None = None) -> list[str]:
        """Card events (of those given, or all sent) without a final decision yet."""
        ids = (
            event_ids
            if event_ids is not None
            else [eid for eid, payload in self.sent.items() if b'"type":"card"' in payload]
        )
        return [eid for eid in ids if eid not in self.decided_at]
