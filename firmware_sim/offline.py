"""A terminal that decides alone when the gateway is away (docs/protocol.md, "Offline decisions").

- `AllowlistHolder` verifies the door's signed list and its deltas (the command key, the
  device id, never an older version), keeps the newest on disk so a restart has it.
- `decide_offline` applies the contract's offline rules to one card.
- `OfflineJournal` keeps every offline decision in an append-only, fsynced, bounded file
  until the gateway acknowledges it.
- `OfflineTerminal` is a `SimTerminal` that goes offline when the gateway's presence says
  gone or a card gets no decision within 1.5 s, and uploads its journal when it is back.

Written from the contract, not from the gateway's code (the simulator speaks the wire).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from devices.transports.mqtt import Message, MqttClient, Will
from firmware_sim.command_check import CommandRefused, key_id, verify_signed
from firmware_sim.terminal import OFFLINE_WILL, SimTerminal

_LOGGER = logging.getLogger(__name__)

DECISION_TIMEOUT_S = 1.5
JOURNAL_CAPACITY = 10_000
UPLOAD_BATCH = 100
UPLOAD_RETRY_S = 3.0
UNLOCK_MS = 3000
FLAG_HELD = 1
FLAG_EMERGENCY = 2
EXIT_PREFIX_BYTES = 3
_VALID_C = (34.0, 43.0)


class AllowlistRefused(Exception):
    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def _epoch(text: Any) -> float:
    if not isinstance(text, str):
        raise AllowlistRefused("bad_signature", "a time field is missing")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise AllowlistRefused("bad_signature", f"{text!r} has no offset")
    return parsed.timestamp()


@dataclass(slots=True)
class Allowlist:
    """A verified list, with the delta applied to it, if any."""

    version: int
    expires: float
    salt: bytes
    rules: dict[str, Any]
    windows: list[list[tuple[int, int]]]
    cards: dict[str, tuple[int, int]]  # hash -> (window set index or -1, flags)
    direction: str = "both"
    delta_version: int | None = None
    # The exit set (doors people leave by): exit prefix -> how many known cards share it.
    # None: a list without one (an older gateway): exits go by `cards` then.
    exits: Counter[bytes] | None = None
    exit_salt: bytes = b""

    @property
    def effective_version(self) -> int:
        return self.delta_version or self.version

    def card_hash(self, card_uid: str) -> str:
        digest = hmac.digest(self.salt, card_uid.upper().encode("ascii"), "sha256")[:12]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def entry(self, card_uid: str) -> tuple[int, int] | None:
        return self.cards.get(self.card_hash(card_uid))

    def may_leave(self, card_uid: str) -> bool:
        """Whether the card is known to the roster (its exit prefix is in the exit set)."""
        assert self.exits is not None
        prefix = hmac.digest(self.exit_salt, card_uid.upper().encode("ascii"), "sha256")
        return self.exits[prefix[:EXIT_PREFIX_BYTES]] > 0

    def in_window(self, index: int, now: float) -> bool:
        if not 0 <= index < len(self.windows):
            return False
        return any(start <= now < end for start, end in self.windows[index])


class AllowlistHolder:
    """The terminal's newest valid list; refusals counted by cause in `refused`."""

    def __init__(self, device_id: str, public_raw: bytes, state_dir: Path | None = None) -> None:
        self.device_id = device_id
        self.kid = key_id(public_raw)
        self._key = Ed25519PublicKey.from_public_bytes(public_raw)
        self.state_dir = state_dir
        self.current: Allowlist | None = None
        self._raw_list: bytes | None = None
        self._pending_delta: bytes | None = None  # a delta that came before its base
        self.refused: dict[str, int] = {}
        if state_dir is not None:
            self._load()

    def _verify(self, payload: bytes, kind: str) -> dict[str, Any]:
        try:
            body, _ = verify_signed(payload, self.device_id, self._key, self.kid)
        except CommandRefused as exc:
            raise AllowlistRefused(exc.cause.value, str(exc)) from None
        if body.get("type") != kind or body.get("v") != 1 or body.get("device") != self.device_id:
            raise AllowlistRefused("bad_signature", f"not a version-1 {kind} for this device")
        return body

    def take_list(self, payload: bytes, *, persist: bool = True) -> bool:
        """Verify and adopt a full list; False (counted) when refused or older."""
        try:
            body = self._verify(payload, "allowlist")
            version = body["version"]
            if self.current is not None and version == self.current.version:
                return True  # the retained list again (a reconnect): nothing new
            if self.current is not None and version < self.current.version:
                raise AllowlistRefused("old_version", f"version {version} is not newer")
            adopted = Allowlist(
                version=version,
                expires=_epoch(body["expires"]),
                salt=base64.urlsafe_b64decode(body["salt"] + "=="),
                rules=dict(body["rules"]),
                windows=[[(int(s), int(e)) for s, e in ws] for ws in body["windows"]],
                cards={h: (int(w), int(f)) for h, w, f in body["cards"]},
                direction=str(body.get("direction", "both")),
                exits=_exit_set(body["exits"]) if "exits" in body else None,
                exit_salt=_b64(body["exit_salt"]) if "exits" in body else b"",
            )
        except AllowlistRefused as exc:
            return self._refuse(exc)
        except (KeyError, TypeError, ValueError) as exc:
            return self._refuse(AllowlistRefused("malformed", str(exc)))
        self.current, self._raw_list = adopted, payload
        if persist:
            self._save("allowlist", payload)
            self._save("allowlist-delta", b"")
        if self._pending_delta is not None:
            pending, self._pending_delta = self._pending_delta, None
            self.take_delta(pending)
        return True

    def take_delta(self, payload: bytes, *, persist: bool = True) -> bool:
        """Verify and apply a cumulative delta to the list it was made on."""
        if not payload:
            return False  # the retained delta was cleared: a new full list comes with it
        try:
            body = self._verify(payload, "allowlist_delta")
            held = self.current
            if held is None or body["base"] > held.version:
                self._pending_delta = payload  # its base list has not arrived yet
                return False
            if body["base"] != held.version:
                raise AllowlistRefused("old_version", "a delta on another list")
            if held.delta_version == body["version"]:
                return True  # the retained delta again
            if held.delta_version is not None and body["version"] < held.delta_version:
                raise AllowlistRefused("old_version", "not newer than the delta applied")
            # Cumulative: rebuild from the base list each time, then apply.
            base = self.current
            assert self._raw_list is not None
            self.current = None
            self.take_list(self._raw_list, persist=False)
            fresh = self.current or base
            fresh.windows.extend([[(int(s), int(e)) for s, e in ws] for ws in body["windows"]])
            for h, w, f in body["upsert"]:
                fresh.cards[h] = (int(w), int(f))
            for h in body["remove"]:
                fresh.cards.pop(h, None)
            if fresh.exits is not None:
                # A multiset: a prefix leaves only when no known card has it any more.
                fresh.exits.update(_b64(p) for p in body.get("exits_add", ()))
                fresh.exits.subtract(_b64(p) for p in body.get("exits_remove", ()))
            fresh.rules = dict(body["rules"])
            fresh.delta_version = body["version"]
            self.current = fresh
        except AllowlistRefused as exc:
            return self._refuse(exc)
        except (KeyError, TypeError, ValueError) as exc:
            return self._refuse(AllowlistRefused("malformed", str(exc)))
        if persist:
            self._save("allowlist-delta", payload)
        return True

    def _refuse(self, exc: AllowlistRefused) -> bool:
        self.refused[exc.cause] = self.refused.get(exc.cause, 0) + 1
        _LOGGER.warning("%s: allowlist refused (%s): %s", self.device_id, exc.cause, exc)
        return False

    def _save(self, name: str, payload: bytes) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / name
        temp = path.with_suffix(".tmp")
        with open(temp, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)

    def _load(self) -> None:
        assert self.state_dir is not None
        with contextlib.suppress(FileNotFoundError):
            self.take_list((self.state_dir / "allowlist").read_bytes(), persist=False)
        with contextlib.suppress(FileNotFoundError):
            self.take_delta((self.state_dir / "allowlist-delta").read_bytes(), persist=False)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _exit_set(text: str) -> Counter[bytes]:
    raw = _b64(text)
    if len(raw) % EXIT_PREFIX_BYTES:
        raise ValueError(f"an exit set of {len(raw)} bytes is not whole prefixes")
    return Counter(raw[k : k + EXIT_PREFIX_BYTES] for k in range(0, len(raw), EXIT_PREFIX_BYTES))


def decide_offline(
    allowlist: Allowlist | None,
    card_uid: str,
    *,
    direction: str,
    now: float,
    celsius: float | None = None,
    entered: int = 0,
) -> tuple[str, str]:
    """(decision, reason) by the contract's offline rules; `entered`: own ins minus outs."""
    if allowlist is None:
        return "deny", "offline_no_list"
    entry = allowlist.entry(card_uid)
    if now >= allowlist.expires:
        if entry is not None and entry[1] & FLAG_EMERGENCY:
            return "admit", "ok"
        return "deny", "offline_expired"
    if direction == "out" and allowlist.exits is not None:
        # Leaving is free for every known card, whatever its grants here or its health.
        return ("admit", "ok") if allowlist.may_leave(card_uid) else ("deny", "unknown_card")
    if entry is None:
        return "deny", "unknown_card"
    if direction == "out":
        return "admit", "ok"
    windows, flags = entry
    if flags & FLAG_HELD:  # the gateway leaves held people out; an older list may flag them
        return "deny", "health_hold"
    if not allowlist.in_window(windows, now):
        return "deny", "not_authorized"
    rules = allowlist.rules
    threshold = float(rules.get("fever_threshold_c", 37.3))
    if celsius is None:
        if rules.get("requires_temperature"):
            return "deny", "temperature_required"
    elif not _VALID_C[0] <= round(celsius, 2) <= _VALID_C[1]:
        return "deny", "temperature_invalid"
    elif round(celsius, 2) >= round(threshold, 2):
        return "deny", "fever"
    capacity = rules.get("capacity")
    if (
        isinstance(capacity, int)
        and rules.get("capacity_mode") == "enforce"
        and int(rules.get("occupancy", 0)) + entered >= capacity
    ):
        return "deny", "zone_full"
    return "admit", "ok"


class OfflineJournal:
    """Offline decisions kept until acknowledged: one JSON line each, fsynced, bounded."""

    def __init__(self, path: Path, capacity: int = JOURNAL_CAPACITY) -> None:
        self.path = path
        self.capacity = capacity
        self.dropped = 0  # the oldest entries given up when full
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    continue  # a line torn by a power cut: the door had not opened for it yet
                if isinstance(entry, dict) and isinstance(entry.get("event_id"), str):
                    if entry.get("acked"):
                        self.entries.pop(entry["event_id"], None)
                    else:
                        self.entries[entry["event_id"]] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, entry: dict[str, Any]) -> None:
        """Keep `entry` durably (before the door opens for it)."""
        self.entries[entry["event_id"]] = entry
        if len(self.entries) > self.capacity:
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)
                self.dropped += 1
            self._rewrite()
            return
        self._write_line(entry)

    def drop(self, event_ids: Sequence[str]) -> int:
        """Forget acknowledged entries (an `acked` line each, compacted when it pays)."""
        gone = [eid for eid in event_ids if self.entries.pop(eid, None) is not None]
        if gone:
            self._rewrite()
        return len(gone)

    def _write_line(self, entry: dict[str, Any]) -> None:
        with open(self.path, "ab") as out:
            out.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())

    def _rewrite(self) -> None:
        temp = self.path.with_suffix(".tmp")
        with open(temp, "wb") as out:
            for entry in self.entries.values():
                out.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)


@dataclass(slots=True)
class OfflineStats:
    decided: int = 0
    uploaded: int = 0
    acked: int = 0
    timeouts: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class OfflineTerminal(SimTerminal):
    """A SimTerminal with an allowlist, offline decisions and store-and-forward.

    `state_dir` holds the list and the journal, so a restarted terminal (a new instance
    on the same directory) keeps both. Needs a pinned command key (`command_key`).
    """

    def __init__(
        self,
        *args: Any,
        state_dir: Path,
        decision_timeout_s: float = DECISION_TIMEOUT_S,
        journal_capacity: int = JOURNAL_CAPACITY,
        **kwargs: Any,
    ) -> None:
        self.allowlist_topic = f"{kwargs.get('prefix', 'campus')}/devices/{args[1]}/allowlist"
        self.delta_topic = f"{self.allowlist_topic}-delta"
        self.uploads_topic = f"{kwargs.get('prefix', 'campus')}/devices/{args[1]}/uploads"
        self.gateway_state_prefix = f"{kwargs.get('prefix', 'campus')}/gateway/state/"
        super().__init__(*args, **kwargs)
        if self.verifier is None:
            raise ValueError("an offline terminal needs the gateway's public key (command_key)")
        self.holder = AllowlistHolder(self.device_id, self.verifier.public_raw, state_dir)
        self.journal = OfflineJournal(state_dir / "journal.jsonl", journal_capacity)
        self.decision_timeout_s = decision_timeout_s
        self.gateway_online: bool | None = None  # None: not heard yet
        self._workers: dict[str, bool] = {}  # gateway worker -> online
        self.timed_out = False  # a card got no decision in time since the last one that did
        self.entered = 0
        self.stats = OfflineStats()
        self.display = "online"
        self._last_upload = 0.0
        self._upload_task: asyncio.Task[None] | None = None

    @property
    def offline(self) -> bool:
        return self.gateway_online is False or self.timed_out

    def _new_client(self) -> MqttClient:
        return MqttClient(
            self.address,
            client_id=self.device_id,
            on_messages=self._handle_messages,
            will=Will(self.state_topic, OFFLINE_WILL, qos=1, retain=True),
            subscriptions=[
                (self.commands_topic, 1),
                (self.signing_key_topic, 1),
                (self.allowlist_topic, 1),
                (self.delta_topic, 1),
                (self.gateway_state_prefix + "+", 1),
            ],
            on_connected=self._announce_online,
            clean_start=self.session_expiry_s is None,
            session_expiry_s=self.session_expiry_s or 0,
        )

    async def start(self, timeout: float = 10.0) -> None:
        await super().start(timeout)
        if self._upload_task is None:
            self._upload_task = asyncio.create_task(self._upload_loop(), name="sim-uploads")

    async def stop(self) -> None:
        if self._upload_task is not None:
            self._upload_task.cancel()
            self._upload_task = None
        await super().stop()

    async def crash(self) -> None:
        if self._upload_task is not None:
            self._upload_task.cancel()
            self._upload_task = None
        await super().crash()

    # ---- cards ------------------------------------------------------------------

    def swipe(
        self,
        card_uid: str,
        *,
        direction: str | None = None,
        celsius: float | None = None,
        event_id: str | None = None,
        due: float | None = None,
    ) -> str:
        if self.gateway_online is False:
            # The gateway is gone: decide now, send nothing (it is uploaded later).
            eid = event_id or self.next_event_id()
            self._local(eid, card_uid, direction, celsius, time.perf_counter())
            return eid
        eid = super().swipe(
            card_uid, direction=direction, celsius=celsius, event_id=event_id, due=due
        )
        loop = asyncio.get_running_loop()
        loop.call_later(
            self.decision_timeout_s, self._check_timeout, eid, card_uid, direction, celsius
        )
        return eid

    def _check_timeout(
        self, eid: str, card_uid: str, direction: str | None, celsius: float | None
    ) -> None:
        if eid in self._finals or eid in self._pendings:
            return
        self.stats.timeouts += 1
        self.timed_out = True
        self._local(eid, card_uid, direction, celsius, time.perf_counter(), sent=True)

    def _local(
        self,
        eid: str,
        card_uid: str,
        direction: str | None,
        celsius: float | None,
        now: float,
        *,
        sent: bool = False,
    ) -> None:
        self.display = "offline"
        allowlist = self.holder.current
        way = direction or self._door_direction(allowlist)
        decision, reason = decide_offline(
            allowlist,
            card_uid,
            direction=way,
            now=time.time() + self.clock_skew_s,
            celsius=celsius,
            entered=self.entered,
        )
        event: dict[str, Any] = {
            "event_id": eid,
            "ts": self._now(),
            "type": "card",
            "card_uid": card_uid,
            "direction": way,
            "offline": True,
            "decision": decision,
            "reason": reason,
            "allowlist_version": allowlist.effective_version if allowlist else None,
        }
        if celsius is not None:
            event["celsius"] = celsius
        self.journal.append(event)  # durable before the door opens
        if decision == "admit":
            self.entered += 1 if way == "in" else -1
        self.stats.decided += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        if not sent:
            self.sent[eid] = json.dumps(event).encode()
            self.sent_at[eid] = now
            self.send_count[eid] = self.send_count.get(eid, 0) + 1
        body = {
            "type": "decision",
            "event_id": eid,
            "decision": decision,
            "reason": reason,
            "unlock_ms": UNLOCK_MS if decision == "admit" else 0,
            "late": False,
            "offline": True,
        }
        self._record_decision(body, now)

    @staticmethod
    def _door_direction(allowlist: Allowlist | None) -> str:
        return "out" if allowlist is not None and allowlist.direction == "out" else "in"

    # ---- messages ---------------------------------------------------------------

    def _handle_messages(self, batch: Sequence[Message]) -> None:
        before = len(self.commands)
        for message in batch:
            if message.topic == self.allowlist_topic and message.payload:
                self.holder.take_list(message.payload)
            elif message.topic == self.delta_topic:
                self.holder.take_delta(message.payload)
            elif message.topic.startswith(self.gateway_state_prefix):
                worker = message.topic[len(self.gateway_state_prefix) :]
                self._on_gateway_state(worker, message.payload)
        super()._handle_messages(batch)
        for command in self.commands[before:]:
            body = command.body
            if body is None or command.refused is not None:
                continue
            if body.get("type") == "upload_ack" and isinstance(body.get("event_ids"), list):
                self.stats.acked += self.journal.drop([str(e) for e in body["event_ids"]])
            elif body.get("type") == "decision" and body.get("decision") != "pending":
                eid = str(body.get("event_id"))
                acted = self._finals.get(eid, [{}])[0]
                if acted.get("offline") is not True:
                    # The gateway's answer was the one acted on: it logged what the door did.
                    self.journal.drop([eid])
                # Otherwise the door already acted on its own decision, which may differ
                # from the gateway's logged one: the entry stays until `upload_ack`, so the
                # gateway learns what the door did.
                self._back_online()

    def _on_gateway_state(self, worker: str, payload: bytes) -> None:
        """The gateway is gone when no worker it has heard of says it is online."""
        try:
            online = json.loads(payload).get("online") if payload else None
        except (ValueError, UnicodeDecodeError, AttributeError):
            return
        if not isinstance(online, bool):
            self._workers.pop(worker, None)  # a cleared retained state: a worker retired
            return
        self._workers[worker] = online
        if any(self._workers.values()):
            self.gateway_online = True
            self._back_online()
        else:
            self.gateway_online = False
            self.display = "offline"

    def _back_online(self) -> None:
        self.timed_out = False
        if self.gateway_online is not False:
            self.display = "online"
            self.upload()

    def upload(self) -> int:
        """Send the journal in batches (QoS 1); entries stay until acknowledged."""
        if not self.journal.entries or not self.is_connected or self.offline:
            return 0
        entries = list(self.journal.entries.values())
        for start in range(0, len(entries), UPLOAD_BATCH):
            batch = entries[start : start + UPLOAD_BATCH]
            payload = json.dumps({"type": "offline_batch", "events": batch}, separators=(",", ":"))
            self._client.publish(self.uploads_topic, payload.encode(), qos=1)
        self.stats.uploaded += len(entries)
        self._last_upload = time.monotonic()
        return len(entries)

    async def _upload_loop(self) -> None:
        while True:
            await asyncio.sleep(UPLOAD_RETRY_S)
            if time.monotonic() - self._last_upload >= UPLOAD_RETRY_S:
                self.upload()
