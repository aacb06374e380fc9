"""Contract JSON (CONTRACT.md section 3) <-> domain events and decisions."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from devices.codecs.command_batch import CommandSigner, sign_batch
from gateway.domain.cards import CardUidError, normalize_card_uid
from gateway.domain.decisions import Decision
from gateway.domain.events import (
    CardEvent,
    DeviceEvent,
    Direction,
    DoorEvent,
    DoorState,
    EventType,
    HeartbeatEvent,
    QrEvent,
    TemperatureEvent,
    ThermalFrameEvent,
)

MAX_EVENT_BYTES = 512 * 1024
# A visitor token is 138 characters; a longer one is still decided (as an unknown card).
MAX_QR_TOKEN = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# RFC 3339 date-time (section 5.6): full date, "T" or space, full time with seconds, offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
MAX_FRAME_PIXELS = 1024 * 1024


class EventRejected(ValueError):
    """A payload that is not a valid contract event; `cause` is a short counter key."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def _str(
    obj: dict[str, Any], name: str, *, required: bool = True, max_len: int = 256
) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise EventRejected("missing_field", f"missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise EventRejected("wrong_type", f"field {name!r} must be a string")
    if not value or len(value) > max_len:
        raise EventRejected("bad_value", f"field {name!r} must have 1-{max_len} characters")
    if _CONTROL.search(value):
        # NUL and lone surrogates cannot be stored or sent back; no control character belongs here.
        raise EventRejected(
            "bad_value", f"field {name!r} holds a control character or a lone surrogate"
        )
    return value


def _number(obj: dict[str, Any], name: str, *, required: bool = True) -> float | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise EventRejected("missing_field", f"missing field {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventRejected("wrong_type", f"field {name!r} must be a number")
    try:
        number = float(value)  # an integer beyond float range overflows
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise EventRejected("bad_value", f"field {name!r} must be finite")
    return number


def _int(obj: dict[str, Any], name: str, low: int, high: int) -> int:
    value = obj.get(name)
    if value is None:
        raise EventRejected("missing_field", f"missing field {name!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventRejected("wrong_type", f"field {name!r} must be an integer")
    if not low <= value <= high:
        raise EventRejected("bad_value", f"field {name!r} must be between {low} and {high}")
    return value


def _ts(obj: dict[str, Any]) -> datetime:
    raw = _str(obj, "ts", max_len=64)
    assert raw is not None
    if not _RFC3339.match(raw):
        if _RFC3339.match(raw + "Z") or _RFC3339.match(raw.replace(" ", "T") + "Z"):
            raise EventRejected("bad_value", "field 'ts' needs a UTC offset (RFC 3339)")
        raise EventRejected("bad_value", f"field 'ts' is not RFC 3339: {raw!r}")
    try:
        # Python 3.11 reads at most 6 fraction digits; RFC 3339 allows more.
        head, dot, rest = raw.partition(".")
        if dot:
            digits = re.match(r"\d+", rest)
            assert digits is not None
            raw = f"{head}.{digits.group()[:6]}{rest[digits.end() :]}"
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise EventRejected(
            "bad_value", f"field 'ts' is not a real date and time: {raw!r}"
        ) from None
    try:
        # 0001-01-01T00:00:00+01:00 is a valid RFC 3339 time whose UTC instant is in year 0:
        # no datetime can hold it, and storing or comparing it would fail far from here.
        ts.astimezone(UTC)
    except OverflowError:
        raise EventRejected(
            "bad_value", f"field 'ts' falls outside the years 1-9999 in UTC: {raw!r}"
        ) from None
    return ts


def _card(obj: dict[str, Any], *, required: bool) -> str | None:
    raw = _str(obj, "card_uid", required=required, max_len=64)
    if raw is None:
        return None
    try:
        return normalize_card_uid(raw)
    except CardUidError as exc:
        raise EventRejected("bad_value", str(exc)) from None


def _enum(obj: dict[str, Any], name: str, enum: type[StrEnum], *, required: bool = True) -> Any:
    raw = _str(obj, name, required=required, max_len=32)
    if raw is None:
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise EventRejected("bad_value", f"field {name!r} must be one of {allowed}") from None


def decode_event(device_id: str, payload: bytes) -> DeviceEvent:
    """Parse one payload from `P/devices/{device_id}/events`, or raise EventRejected."""
    if len(payload) > MAX_EVENT_BYTES:
        raise EventRejected(
            "too_large", f"payload of {len(payload)} bytes exceeds {MAX_EVENT_BYTES}"
        )
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventRejected("not_json", f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise EventRejected("not_json", "payload nests too deeply") from None
    if not isinstance(obj, dict):
        raise EventRejected("not_object", "payload must be a JSON object")
    event_id = _str(obj, "event_id", max_len=64)
    assert event_id is not None
    ts = _ts(obj)
    kind = _enum(obj, "type", EventType)
    if kind is EventType.CARD:
        celsius = _number(obj, "celsius", required=False)
        direction = _enum(obj, "direction", Direction, required=False)
        return CardEvent(device_id, event_id, ts, _card(obj, required=True), direction, celsius)  # type: ignore[arg-type]
    if kind is EventType.TEMPERATURE:
        celsius = _number(obj, "celsius")
        return TemperatureEvent(device_id, event_id, ts, celsius, _card(obj, required=False))  # type: ignore[arg-type]
    if kind is EventType.DOOR:
        return DoorEvent(device_id, event_id, ts, _enum(obj, "state", DoorState))
    if kind is EventType.QR:
        direction = _enum(obj, "direction", Direction, required=False)
        token = _str(obj, "token", max_len=MAX_QR_TOKEN)
        return QrEvent(device_id, event_id, ts, token, direction)  # type: ignore[arg-type]
    if kind is EventType.HEARTBEAT:
        uptime = _number(obj, "uptime_s", required=False)
        return HeartbeatEvent(
            device_id, event_id, ts, uptime, _str(obj, "firmware", required=False, max_len=128)
        )
    return _thermal_frame(device_id, event_id, ts, obj)


def _thermal_frame(
    device_id: str, event_id: str, ts: datetime, obj: dict[str, Any]
) -> ThermalFrameEvent:
    width = _int(obj, "width", 1, 4096)
    height = _int(obj, "height", 1, 4096)
    if width * height > MAX_FRAME_PIXELS:
        raise EventRejected("bad_value", f"frame of {width}x{height} pixels is too large")
    raw = _str(obj, "celsius_f32le", max_len=MAX_EVENT_BYTES)
    try:
        pixels = base64.b64decode(raw, validate=True)  # type: ignore[arg-type]
    except (binascii.Error, ValueError):
        raise EventRejected("bad_value", "field 'celsius_f32le' is not base64") from None
    if len(pixels) != width * height * 4:
        raise EventRejected(
            "bad_value",
            f"field 'celsius_f32le' holds {len(pixels)} bytes; {width}x{height} needs {width * height * 4}",
        )
    return ThermalFrameEvent(
        device_id, event_id, ts, width, height, pixels, _card(obj, required=False)
    )


def encode_decision(
    decision: Decision, device_id: str | None = None, signer: CommandSigner | None = None
) -> bytes:
    """The payload for `P/devices/{device_id}/commands`, signed for that device by `signer`
    as a batch of one (the publisher signs several at once with `sign_batch`)."""
    if signer is None:
        return _compact(decision.to_wire())
    if device_id is None:
        raise ValueError("a signed command needs the device id it is for")
    return sign_batch([(device_id, decision.to_wire())], signer)[0]


def sign_command(fields: dict[str, Any], device_id: str, signer: CommandSigner) -> bytes:
    """Any other message for one device (an allowlist, an upload's ack), signed as a batch of
    one in the same scheme as decisions, so a terminal verifies everything one way."""
    return sign_batch([(device_id, fields)], signer)[0]


def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def decode_state(payload: bytes) -> bool | None:
    """`online` from a device's retained state message; None when unreadable."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    online = obj.get("online") if isinstance(obj, dict) else None
    return online if isinstance(online, bool) else None
