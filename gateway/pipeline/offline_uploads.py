"""Store-and-forward (issue 13): what terminals decided offline, logged once and re-decided.

An upload (`P/devices/{id}/uploads`, docs/protocol.md "Store-and-forward") is a batch of
card events the terminal decided from its allowlist. Each is logged once as the passage
the door made (its local decision), re-decided with the policy as it stood at the
device's time (today's roster, the person's health status then), and an offline admit
the gateway would have denied raises `offline_mismatch`. The upload is acknowledged to
the terminal (a signed `upload_ack`) and to the broker only once it is durable.

This is not the door decision path: it may wait on the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from devices.codecs.contract_json import sign_command
from devices.transports.mqtt import Message
from gateway.domain.alerts import AlertKind
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.dedupe import SeenEvents
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.signing import Ed25519CommandSigner
from gateway.pipeline.topics import Topics
from gateway.pipeline.upload_quota import UploadQuota
from gateway.policy.decide import decide, resolve_direction
from gateway.policy.occupancy import Occupancy
from gateway.policy.roster_index import RosterIndex
from gateway.store import offline_uploads as store
from gateway.store.db import DATABASE_ERRORS, acquire

_LOGGER = logging.getLogger(__name__)

MAX_BATCH = 100
MAX_PAYLOAD = 256 * 1024
AHEAD_S = 5.0  # a device time this far ahead of the gateway's is not believed (contract "Time")
# Uploads being taken at once: one per device (the terminal resends its whole journal every
# few seconds, so a second is a copy), and a bound over all devices, so uploads never crowd
# the connection the card events share.
MAX_IN_FLIGHT = 32
_EVENT_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_CARD = re.compile(r"^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{10}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{20})$")
_CLEAR_SINCE = datetime(1970, 1, 1, tzinfo=UTC)
_HEALTH_REASONS = frozenset({Reason.HEALTH_HOLD, Reason.FEVER, Reason.TEMPERATURE_INVALID})


class UploadRejected(ValueError):
    """An uploaded event that cannot be taken; the message says why."""


@dataclass(frozen=True, slots=True)
class OfflineEvent:
    event_id: str
    device_ts: datetime
    card_uid: str
    direction: Direction | None
    celsius: float | None
    decision: Verdict
    reason: str
    allowlist_version: int | None


def parse_event(obj: Any) -> OfflineEvent:
    """One uploaded event, checked field by field."""
    if not isinstance(obj, dict):
        raise UploadRejected("an uploaded event is not a JSON object")
    event_id = obj.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise UploadRejected("event_id must be 1-64 characters without control characters")
    if obj.get("type") != "card" or obj.get("offline") is not True:
        raise UploadRejected(f"{event_id}: only card events flagged offline are uploaded")
    try:
        ts = datetime.fromisoformat(obj["ts"])
        if ts.tzinfo is None:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise UploadRejected(f"{event_id}: ts is not RFC 3339 with an offset") from None
    card = obj.get("card_uid")
    if not isinstance(card, str) or not _CARD.match(card):
        raise UploadRejected(f"{event_id}: card_uid is not 4, 5, 7 or 10 bytes of hex")
    direction = obj.get("direction")
    if direction not in (None, "in", "out"):
        raise UploadRejected(f"{event_id}: direction must be in or out")
    celsius = obj.get("celsius")
    if celsius is not None and (
        isinstance(celsius, bool) or not isinstance(celsius, int | float) or celsius != celsius
    ):
        raise UploadRejected(f"{event_id}: celsius is not a number")
    decision = obj.get("decision")
    if decision not in ("admit", "deny"):
        raise UploadRejected(f"{event_id}: decision must be admit or deny")
    reason = obj.get("reason")
    if not isinstance(reason, str) or not 0 < len(reason) <= 40:
        raise UploadRejected(f"{event_id}: reason missing")
    version = obj.get("allowlist_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UploadRejected(f"{event_id}: allowlist_version is not an integer")
    if version is None and decision == "admit":
        # Without a list a terminal only denies (offline_no_list): such an admit is forged.
        raise UploadRejected(f"{event_id}: an admit without an allowlist_version")
    return OfflineEvent(
        event_id,
        ts,
        card.upper(),
        None if direction is None else Direction(direction),
        None if celsius is None else float(celsius),
        Verdict(decision),
        reason,
        version,
    )


class UploadDesk:
    """Takes uploads, logs each event once, re-decides it and raises mismatches."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        index: Callable[[], RosterIndex],
        policy: DoorPolicy,
        seen: SeenEvents,
        occupancy: Occupancy,
        alerter: Alerter,
        publish: Callable[[str, bytes], None],
        ack: Callable[[Message], None],
        topics: Topics,
        signer: Ed25519CommandSigner | None,
        counters: Counters,
    ) -> None:
        self._pool = pool
        self._index = index
        self._policy = policy
        self._seen = seen
        self._occupancy = occupancy
        self._alerter = alerter
        self._publish = publish
        self._ack = ack
        self._topics = topics
        self._signer = signer
        self._counters = counters
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # devices with an upload being taken
        self._quota = UploadQuota()
        self._lock = asyncio.Lock()  # uploads are taken in the order they came
        self._unlogged: set[tuple[str, str]] = set()
        self.logged = 0
        self.mismatches = 0

    def on_upload(self, message: Message, device_id: str) -> None:
        # Parsed here (cheap, no I/O): garbage is refused at once and takes no upload slot.
        events, dropped = self._parse(message.payload, device_id)
        if not events and not dropped:
            self._ack(message)
            return
        if device_id in self._busy or len(self._busy) >= MAX_IN_FLIGHT:
            # Acknowledged and left: the terminal resends its journal until `upload_ack`.
            self._counters.reject("offline_upload_busy")
            self._ack(message)
            return
        if not self._quota.take(device_id, len(events) + len(dropped), time.monotonic()):
            # More than a terminal's journal would hold: slowed down, not lost.
            self._counters.reject("offline_upload_quota")
            self._ack(message)
            return
        self._busy.add(device_id)
        task = asyncio.create_task(
            self._take(message, device_id, events, dropped), name=f"upload-{device_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._busy.discard(device_id))

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _take(
        self, message: Message, device_id: str, events: list[OfflineEvent], dropped: list[str]
    ) -> None:
        # The broker's message is acknowledged whatever happens: an unacknowledged one holds
        # a delivery slot of the connection the card events share (receive-maximum), so
        # failing uploads would stall every door. The retry is the terminal's: without an
        # `upload_ack` it keeps its journal and sends it again.
        try:
            async with self._lock:
                acked = await self._reconcile(device_id, events, dropped)
        except DATABASE_ERRORS as exc:
            self._counters.reject("offline_upload_failed")
            _LOGGER.error(
                "device %s: upload not taken (%s); the terminal will resend", device_id, exc
            )
            return
        except Exception:
            _LOGGER.exception("device %s: upload failed", device_id)
            self._counters.reject("internal_error")
            return
        finally:
            self._ack(message)
        if acked:
            self._send_ack(device_id, acked)

    async def _reconcile(
        self, device_id: str, events: list[OfflineEvent], dropped: list[str]
    ) -> list[str]:
        """Log the batch's new events; returns every event id the terminal may drop."""
        index = self._index()
        device = index.device(device_id)
        if device is None:
            self._counters.reject("offline_unknown_device")
            _LOGGER.warning("upload from unregistered device %s ignored", device_id)
            return []
        door = index.door(device.door_id)
        if door is None:
            return []
        received = datetime.now(UTC)
        ahead = [e for e in events if e.device_ts - received > timedelta(seconds=AHEAD_S)]
        if ahead:
            # A swipe the door has not seen yet: an upload for an event id the real terminal
            # will send later. Refused (and acknowledged, or it would be sent forever).
            self._counters.reject("offline_ahead")
            _LOGGER.warning(
                "device %s: %d uploaded events dated ahead of the gateway refused",
                device_id,
                len(ahead),
            )
            events = [e for e in events if e not in ahead]
            dropped += [e.event_id for e in ahead]
        # In this process the online path and the uploads share the duplicate memory: an
        # event decided online is not logged again, and one logged here is answered, not
        # decided, if the broker still delivers it.
        fresh = [
            e
            for e in events
            if (device_id, e.event_id) in self._unlogged
            or not self._seen.lookup((device_id, e.event_id))[0]
        ]
        keys = {(device_id, e.event_id) for e in fresh}
        for event in fresh:
            reason = _reason(event.reason)
            # Late: a repeat of an uploaded id is answered, never with an unlock. The door
            # acted on it already; an id uploaded by someone else must not open it later.
            self._seen.remember(
                (device_id, event.event_id),
                Decision.recorded(event.event_id, event.decision.value, reason.value).as_late(),
            )
        # Remembered before they are durable (so the online path leaves them alone), but
        # still to be logged when this attempt fails and the terminal sends them again.
        self._unlogged |= keys
        async with acquire(self._pool, 10.0) as conn:
            logged = await store.already_logged(conn, device_id, [e.event_id for e in fresh])
            fresh = [e for e in fresh if e.event_id not in logged]
            people = {card.person_id for e in fresh if (card := index.card(e.card_uid)) is not None}
            held_then = {
                e.event_id: await store.health_at(conn, list(people), e.device_ts)
                for e in fresh
                if people
            }
            rows = [self._row(index, device_id, door, e, received, held_then) for e in fresh]
            newly = await store.record_uploads(conn, [(row, rec) for row, rec, _ in rows])
            amended = await self._amend(
                conn, device_id, [e for e in events if e.event_id not in newly]
            )
            # Acknowledged once in the log: an event decided online whose row is not durable
            # yet (journal, spool) is left for the terminal's resend, so it is compared then.
            in_log = await store.already_logged(conn, device_id, [e.event_id for e in events])
        self._unlogged -= keys
        for event, logged in amended:
            self._door_overruled(device_id, door, event, logged)
        for row, record, outcome in rows:
            if row.event_id not in newly:
                continue
            self.logged += 1
            if record.verdict is Verdict.ADMIT and record.zone_id and record.direction:
                self._occupancy.passed(
                    record.zone_id, record.direction, record.person_id, record.received_at
                )
            self._alerts(device_id, door.id, record, outcome)
            if record.verdict is Verdict.ADMIT and outcome.verdict is not Verdict.ADMIT:
                self._mismatch(device_id, door.id, record, row, outcome)
        return [e.event_id for e in events if e.event_id in in_log] + dropped

    async def _amend(
        self, conn: asyncpg.Connection, device_id: str, events: list[OfflineEvent]
    ) -> list[tuple[OfflineEvent, store.LoggedOnline]]:
        """Events decided online that the door decided itself (its answer came too late)
        and differently: their log rows are amended to what the door did."""
        if not events:
            return []
        online = await store.logged_online(conn, device_id, [e.event_id for e in events])
        amended = []
        for event in events:
            logged = online.get(event.event_id)
            if logged is None or logged.decision == event.decision.value:
                continue
            row = store.UploadRow(
                device_id,
                event.event_id,
                event.device_ts,
                event.decision.value,
                event.reason,
                logged.decision,
                logged.reason,
                event.allowlist_version,
            )
            if await store.amend_to_local(conn, row, _reason(event.reason).value):
                amended.append((event, logged))
        return amended

    def _door_overruled(
        self, device_id: str, door: Any, event: OfflineEvent, logged: store.LoggedOnline
    ) -> None:
        """The log now says what the door did; occupancy follows (stays and tracing read
        the log), and the difference is an `offline_mismatch` either way: an admit the
        gateway denied is a breach, a deny it admitted a person left outside."""
        self.mismatches += 1
        zone, person = logged.zone_id, logged.person_id
        direction = Direction(logged.direction) if logged.direction else None
        if zone and direction:
            if event.decision is Verdict.ADMIT:
                self._occupancy.passed(zone, direction, person, logged.received_at)
            elif direction is Direction.IN:
                # Counted in when the gateway admitted; the door kept them out.
                self._occupancy.passed(zone, Direction.OUT, person, logged.received_at)
        self._alerter.raise_alert(
            AlertKind.OFFLINE_MISMATCH,
            datetime.now(UTC),
            door=door.id,
            zone=zone,
            device=device_id,
            person=person,
            detail={
                "event_id": event.event_id,
                "device_ts": event.device_ts.isoformat(),
                "local_decision": event.decision.value,
                "local_reason": event.reason,
                "logged_decision": logged.decision,
                # Health reasons stay out, as in every offline_mismatch.
                "reason": None
                if logged.reason in {r.value for r in _HEALTH_REASONS}
                else logged.reason,
                "allowlist_version": event.allowlist_version,
                "amended": True,
            },
        )

    def _parse(self, payload: bytes, device_id: str) -> tuple[list[OfflineEvent], list[str]]:
        if len(payload) > MAX_PAYLOAD:
            self._counters.reject("offline_too_large")
            return [], []
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict) or body.get("type") != "offline_batch":
            self._counters.reject("offline_not_a_batch")
            _LOGGER.warning("device %s: upload is not an offline_batch", device_id)
            return [], []
        raw = body.get("events")
        if not isinstance(raw, list) or len(raw) > MAX_BATCH:
            self._counters.reject("offline_bad_batch")
            return [], []
        events: list[OfflineEvent] = []
        dropped: list[str] = []
        for obj in raw:
            try:
                events.append(parse_event(obj))
            except UploadRejected as exc:
                self._counters.reject("offline_bad_event")
                _LOGGER.warning("device %s: uploaded event refused: %s", device_id, exc)
                eid = obj.get("event_id") if isinstance(obj, dict) else None
                if isinstance(eid, str) and _EVENT_ID.match(eid):
                    dropped.append(eid)  # acknowledged, or the terminal would send it forever
        return events, dropped

    def _row(
        self,
        index: RosterIndex,
        device_id: str,
        door: Any,
        event: OfflineEvent,
        received: datetime,
        held_then: dict[str, dict[str, HealthRecord]],
    ) -> tuple[store.UploadRow, AccessRecord, Any]:
        direction = resolve_direction(event.direction, door)
        at = _log_time(event.device_ts, received, self._policy.max_stay_h)
        card = index.card(event.card_uid)
        then = index
        if card is not None:
            record = held_then.get(event.event_id, {}).get(card.person_id)
            then = index.with_health(
                record or HealthRecord(card.person_id, HealthStatus.CLEAR, _CLEAR_SINCE)
            )
        # The capacity check is left out (the zone's count then is not known): occupancy 0.
        outcome = decide(
            then,
            door=door,
            card_uid=event.card_uid,
            direction=direction,
            now=event.device_ts.astimezone(UTC),
            tz=self._policy.tz,
            celsius=event.celsius,
            fever_threshold_c=self._policy.fever_threshold_c,
            occupancy=0,
            temperature_window_open=False,
        )
        local_reason = _reason(event.reason)
        person = outcome.person
        record = AccessRecord(
            device_id=device_id,
            event_id=event.event_id,
            type=EventType.CARD,
            device_ts=event.device_ts,
            received_at=at,
            door_id=door.id,
            zone_id=door.zone_id,
            person_id=person.id if person else None,
            card_uid=event.card_uid,
            direction=direction,
            celsius=event.celsius,
            verdict=event.decision,
            reason=local_reason,
            decided_at=event.device_ts,
            detail={
                "offline": True,
                "local_reason": event.reason,
                "gateway_decision": outcome.verdict.value,
                "gateway_reason": outcome.reason.value,
                "allowlist_version": event.allowlist_version,
            },
            gateway_ts=received,
        )
        row = store.UploadRow(
            device_id,
            event.event_id,
            event.device_ts,
            event.decision.value,
            event.reason,
            outcome.verdict.value,
            outcome.reason.value,
            event.allowlist_version,
        )
        return row, record, outcome

    def _alerts(self, device_id: str, door_id: str, record: AccessRecord, outcome: Any) -> None:
        """The alerts the gateway would have raised online (an outsider, a held person at the
        door), late but not lost; their detail says they come from an offline upload."""
        for kind in outcome.alerts:
            self._alerter.raise_alert(
                kind,
                record.received_at,
                door=door_id,
                zone=record.zone_id,
                device=device_id,
                person=record.person_id,
                detail={
                    "offline": True,
                    "event_id": record.event_id,
                    "reason": outcome.reason.value,
                    "direction": record.direction.value if record.direction else None,
                    **({"card_uid": record.card_uid} if record.person_id is None else {}),
                },
            )

    def _mismatch(
        self, device_id: str, door_id: str, record: AccessRecord, row: store.UploadRow, outcome: Any
    ) -> None:
        self.mismatches += 1
        self._alerter.raise_alert(
            AlertKind.OFFLINE_MISMATCH,
            datetime.now(UTC),
            door=door_id,
            zone=record.zone_id,
            device=device_id,
            person=record.person_id,
            detail={
                "event_id": row.event_id,
                "device_ts": row.device_ts.isoformat(),
                "local_reason": row.local_reason,
                # Health data stays out: liaisons see this alert, not the health ones; the
                # isolation_breach or fever alert raised beside it says why, to those who may.
                "reason": None if outcome.reason in _HEALTH_REASONS else outcome.reason.value,
                "allowlist_version": row.allowlist_version,
            },
        )

    def _send_ack(self, device_id: str, event_ids: list[str]) -> None:
        fields = {"type": "upload_ack", "event_ids": event_ids}
        if self._signer is not None:
            payload = sign_command(fields, device_id, self._signer)
        else:
            payload = json.dumps(fields, separators=(",", ":")).encode()
        self._publish(self._topics.commands(device_id), payload)


def _reason(text: str) -> Reason:
    """The contract reason of a local decision; offline-only reasons log as not_authorized."""
    try:
        return Reason(text)
    except ValueError:
        return Reason.NOT_AUTHORIZED


def _log_time(device_ts: datetime, received: datetime, max_stay_h: float) -> datetime:
    """The device's time when plausible (contract "Time"), else the receipt time."""
    if device_ts - received > timedelta(seconds=AHEAD_S):
        return received
    if received - device_ts > timedelta(hours=max_stay_h):
        return received
    return device_ts
