"""The contract JSON codec: examples from CONTRACT.md section 3 and property-based fuzzing."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs.contract_json import (
    MAX_EVENT_BYTES,
    EventRejected,
    decode_event,
    encode_decision,
)
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.domain.events import (
    CardEvent,
    Direction,
    DoorEvent,
    DoorState,
    HeartbeatEvent,
    QrEvent,
    TemperatureEvent,
    ThermalFrameEvent,
)

TS = "2026-11-28T08:15:00+08:00"


def payload(**fields) -> bytes:
    return json.dumps({"event_id": "e-1", "ts": TS, **fields}).encode()


def test_card_event_of_the_contract():
    event = decode_event(
        "term-d10-1", payload(type="card", card_uid="04a1b2c3d4", direction="in", celsius=36.4)
    )
    assert event == CardEvent("term-d10-1", "e-1", event.ts, "04A1B2C3D4", Direction.IN, 36.4)
    assert event.ts.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    "uid", ["0A0B0C0D", "0a0b0c0d0e", "04A1B2C3D4E5F6", "00112233445566778899"]
)
def test_card_uids_of_4_5_7_10_bytes(uid):
    assert decode_event("d", payload(type="card", card_uid=uid)).card_uid == uid.upper()


def test_qr_event_carries_its_token_and_direction():
    event = decode_event("d", payload(type="qr", token="CGQ1.abc.def", direction="out"))
    assert event == QrEvent("d", "e-1", event.ts, "CGQ1.abc.def", Direction.OUT)
    for bad, cause in (({}, "missing_field"), ({"token": 5}, "wrong_type"),
                       ({"token": "x" * 1025}, "bad_value")):  # fmt: skip
        with pytest.raises(EventRejected) as info:
            decode_event("d", payload(type="qr", **bad))
        assert info.value.cause == cause


def test_temperature_door_heartbeat_and_frame():
    assert decode_event(
        "d", payload(type="temperature", celsius=37, card_uid="0A0B0C0D")
    ) == TemperatureEvent(
        "d", "e-1", decode_event("d", payload(type="heartbeat")).ts, 37.0, "0A0B0C0D"
    )
    assert decode_event("d", payload(type="door", state="forced")).state is DoorState.FORCED
    assert isinstance(
        decode_event("d", payload(type="heartbeat", uptime_s=5, firmware="1.2")), HeartbeatEvent
    )
    pixels = struct.pack("<4f", 20.0, 21.0, 36.5, 37.0)
    frame = decode_event(
        "d",
        payload(
            type="thermal_frame", width=2, height=2, celsius_f32le=base64.b64encode(pixels).decode()
        ),
    )
    assert isinstance(frame, ThermalFrameEvent) and frame.celsius_f32le == pixels
    assert isinstance(decode_event("d", payload(type="door", state="closed")), DoorEvent)


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_object"),
        (payload(type="card"), "missing_field"),
        (payload(type="card", card_uid=1234), "wrong_type"),
        (payload(type="card", card_uid="123"), "bad_value"),
        (payload(type="card", card_uid="0A0B0C0D0E0F"), "bad_value"),  # 6 bytes
        (payload(type="card", card_uid="0A0B0C0D", celsius=True), "wrong_type"),
        (payload(type="card", card_uid="0A0B0C0D", direction="up"), "bad_value"),
        (payload(type="teleport"), "bad_value"),
        (payload(type="temperature", celsius="hot"), "wrong_type"),
        (payload(type="door", state="ajar"), "bad_value"),
        (payload(type="thermal_frame", width=2, height=2, celsius_f32le="AAAA"), "bad_value"),
        (payload(type="thermal_frame", width=2, height=2, celsius_f32le="!!"), "bad_value"),
        (
            json.dumps(
                {"event_id": "e", "ts": "2026-11-28T08:15:00", "type": "heartbeat"}
            ).encode(),
            "bad_value",
        ),
        (json.dumps({"event_id": "", "ts": TS, "type": "heartbeat"}).encode(), "bad_value"),
        (json.dumps({"event_id": "x" * 65, "ts": TS, "type": "heartbeat"}).encode(), "bad_value"),
        (
            b'{"event_id": "e", "ts": "'
            + TS.encode()
            + b'", "type": "temperature", "celsius": NaN}',
            "bad_value",
        ),
        (payload(type="temperature", celsius=10**400), "bad_value"),
        (b" " * (MAX_EVENT_BYTES + 1), "too_large"),
        (json.dumps({"event_id": "a\u0000", "ts": TS, "type": "heartbeat"}).encode(), "bad_value"),
        (json.dumps({"event_id": "\ud800", "ts": TS, "type": "heartbeat"}).encode(), "bad_value"),
        (
            json.dumps(
                {"event_id": "e", "ts": "2026-11-28T10+08:00", "type": "heartbeat"}
            ).encode(),
            "bad_value",
        ),
        (
            json.dumps(
                {"event_id": "e", "ts": "20261128T100000+0800", "type": "heartbeat"}
            ).encode(),
            "bad_value",
        ),
        (
            json.dumps(
                {"event_id": "e", "ts": "2026-02-30T10:00:00Z", "type": "heartbeat"}
            ).encode(),
            "bad_value",
        ),
        (json.dumps({"event_id": "e", "ts": TS, "type": "heartbeat"}).encode("utf-16"), "not_json"),
        (b"[" * 100_000, "not_json"),
    ],
)
def test_bad_payloads_are_rejected_with_a_cause(body, cause):
    with pytest.raises(EventRejected) as info:
        decode_event("d", body)
    assert info.value.cause == cause


def test_decision_wire_form():
    wire = json.loads(
        encode_decision(Decision("e-9", Verdict.ADMIT, Reason.OK, "Welcome, Li Hua", 3000))
    )
    assert wire == {
        "type": "decision",
        "event_id": "e-9",
        "decision": "admit",
        "reason": "ok",
        "message": "Welcome, Li Hua",
        "unlock_ms": 3000,
        "late": False,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "event_id",
        "ts",
        "type",
        "card_uid",
        "celsius",
        "direction",
        "state",
        "width",
        "height",
        "celsius_f32le",
        "x",
    ]
)
near_events = st.dictionaries(
    field_names,
    json_values
    | st.sampled_from(
        [
            "card",
            "temperature",
            "door",
            "heartbeat",
            "thermal_frame",
            TS,
            "0A0B0C0D",
            "in",
            "forced",
        ]
    ),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_are_rejected(raw):
    with contextlib.suppress(EventRejected):
        decode_event("d", raw)


@settings(max_examples=1000, deadline=None)
@given(near_events)
def test_any_near_event_decodes_or_is_rejected(obj):
    try:
        event = decode_event("d", json.dumps(obj).encode())
    except EventRejected as exc:
        assert exc.cause in {"missing_field", "wrong_type", "bad_value", "not_object", "not_json"}
        return
    assert event.event_id == obj["event_id"]


def _heartbeat(ts: str) -> bytes:
    return json.dumps({"event_id": "e", "ts": ts, "type": "heartbeat"}).encode()


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:59:59.999999+01:00",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31T12:00:00-12:00",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-00:01",
    ],
)
def test_a_time_whose_utc_instant_leaves_years_1_to_9999_is_refused(ts):
    with pytest.raises(EventRejected) as info:
        decode_event("d", _heartbeat(ts))
    assert info.value.cause == "bad_value"


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T01:00:00+01:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T11:59:59-12:00",
        "0001-01-01T00:00:00-00:00",
    ],
)
def test_the_extreme_times_that_fit_in_utc_are_kept(ts):
    assert decode_event("d", _heartbeat(ts)).ts.astimezone(UTC).tzinfo is UTC


offsets = st.builds(
    lambda sign, h, m: "Z" if (h, m) == (0, 0) and sign == "+" else f"{sign}{h:02d}:{m:02d}",
    st.sampled_from("+-"),
    st.integers(0, 23),
    st.integers(0, 59),
)
edge_times = st.builds(
    lambda date, hms, offset: f"{date}T{hms}{offset}",
    st.sampled_from(["0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31"]),
    st.builds(
        lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}",
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
    ),
    offsets,
)


@settings(max_examples=500, deadline=None)
@given(edge_times)
def test_every_decoded_time_has_a_utc_instant(ts):
    """Whatever passes the codec converts to UTC (the log stores it as timestamptz)."""
    try:
        event = decode_event("d", _heartbeat(ts))
    except EventRejected as exc:
        assert exc.cause == "bad_value"
        return
    assert 1 <= event.ts.astimezone(UTC).year <= 9999
