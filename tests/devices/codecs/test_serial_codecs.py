"""RDM6300, Wiegand and OSDP codecs pinned by byte vectors worked out from the formats' specs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs import osdp, rdm6300, wiegand
from devices.codecs.serial_codecs import SERIAL_CODECS, serial_codec
from devices.codecs.serial_frames import CardRead, Rejected, decode_stream
from gateway.domain.cards import normalize_card_uid
from gateway.domain.decisions import Verdict
from gateway.domain.roster import SerialProtocol
from gateway.services.manifest import SERIAL_PROTOCOLS

# ---- RDM6300 / EM4100: STX, 10 hex, XOR checksum in 2 hex, ETX ---------------------------

# 01^00^07^3A^8D = B1 ; 62^E3^08^6C^ED = 08 ; 00^00^00^00^00 = 00 ; FF^FF^FF^FF^FF = FF
RDM_VALID = [
    (b"\x020100073A8DB1\x03", "0100073A8D"),
    (b"\x0262E3086CED08\x03", "62E3086CED"),
    (b"\x0262e3086ced08\x03", "62E3086CED"),  # lower-case hex digits are accepted
    (b"\x02000000000000\x03", "0000000000"),
    (b"\x02FFFFFFFFFFFF\x03", "FFFFFFFFFF"),
]


@pytest.mark.parametrize(("frame", "uid"), RDM_VALID)
def test_rdm6300_decodes_spec_frames(frame: bytes, uid: str) -> None:
    assert rdm6300.decode(frame) == (14, CardRead(uid))
    assert normalize_card_uid(uid) == uid  # the MQTT contract's form: 5 bytes


@pytest.mark.parametrize(("frame", "uid"), RDM_VALID[:2])
def test_rdm6300_encode_matches_vector(frame: bytes, uid: str) -> None:
    assert rdm6300.encode(bytes.fromhex(uid)) == frame


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x020100073A8DB2\x03", (14, Rejected("bad_checksum"))),
        (b"\x020100073A8DB1\x04", (13, Rejected("bad_frame"))),  # no ETX
        (b"\x020100G73A8DB3\x03", (5, Rejected("bad_frame"))),  # non-hex digit
        (b"\x020100\x020100073A8DB1\x03", (5, Rejected("bad_frame"))),  # STX inside a frame
        (b"xyz\x020100073A8DB1\x03", (3, Rejected("noise"))),
        (b"garbage", (7, Rejected("noise"))),
        (b"\x020100073A", (0, None)),  # partial: wait for more
        (b"", (0, None)),
    ],
)
def test_rdm6300_rejects_and_waits(data: bytes, expected: tuple) -> None:
    assert rdm6300.decode(data) == expected


# ---- Wiegand 26 (H10301) and 34 ----------------------------------------------------------

# 26-bit, facility 123 (0111 1011), card 45678 (1011 0010 0110 1110):
#   first 12 data bits 01111011 1011 have 9 ones -> even parity bit 1
#   last 12 data bits 0010 0110 1110 have 6 ones -> odd parity bit 1
#   1 01111011 1011001001101110 1 = 0x2F764DD
# 34-bit, facility 123 (16 bits, 6 ones -> 0), card 45678 (9 ones -> 0): 0x00F764DC
WIEGAND_VALID = [
    (b"W26:2F764DD\r\n", 26, 123, 45678, "007BB26E"),
    (b"W26:2F764DD\n", 26, 123, 45678, "007BB26E"),
    (b"W34:000F764DC\r\n", 34, 123, 45678, "007BB26E"),
    (b"W26:2020002\r\n", 26, 1, 1, "00010001"),  # 1 00000001 0000000000000001 0
    (b"W26:0000001\r\n", 26, 0, 0, "00000000"),  # all-zero data: even 0, odd 1
    (b"W26:1FFFFFF\r\n", 26, 255, 65535, "00FFFFFF"),  # 8+4 ones: even 0; 12 ones: odd 1
    (b"W34:1FFFFFFFF\r\n", 34, 65535, 65535, "FFFFFFFF"),
]


@pytest.mark.parametrize(("frame", "bits", "facility", "number", "uid"), WIEGAND_VALID)
def test_wiegand_decodes_spec_frames(
    frame: bytes, bits: int, facility: int, number: int, uid: str
) -> None:
    assert wiegand.decode(frame) == (len(frame), CardRead(uid, facility, number))
    assert normalize_card_uid(uid) == uid


@pytest.mark.parametrize(("frame", "bits", "facility", "number", "uid"), WIEGAND_VALID[::2])
def test_wiegand_encode_matches_vector(
    frame: bytes, bits: int, facility: int, number: int, uid: str
) -> None:
    assert wiegand.encode(bits, facility, number) == frame


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"W26:2F764DC\r\n", (13, Rejected("bad_parity"))),  # odd parity bit flipped
        (b"W26:0F764DD\r\n", (13, Rejected("bad_parity"))),  # even parity bit flipped
        (b"W26:2F764CD\r\n", (13, Rejected("bad_parity"))),  # one data bit flipped
        (b"W34:100F764DC\r\n", (15, Rejected("bad_parity"))),
        (b"W26:4F764DD\r\n", (13, Rejected("bad_frame"))),  # a 27th bit
        (b"W27:2F764DD\r\n", (2, Rejected("bad_frame"))),
        (b"W26:2F7W4DD\r\n", (7, Rejected("bad_frame"))),
        (b"W26:2F764DDX\r\n", (11, Rejected("bad_frame"))),
        (b"noise W26", (6, Rejected("noise"))),
        (b"W26:2F7", (0, None)),
        (b"W26:2F764DD\r", (0, None)),
        (b"W", (0, None)),
    ],
)
def test_wiegand_rejects_and_waits(data: bytes, expected: tuple) -> None:
    assert wiegand.decode(data) == expected


def test_one_card_one_identity_across_wiegand_formats_and_osdp() -> None:
    w26 = wiegand.decode(b"W26:2F764DD\r\n")[1]
    w34 = wiegand.decode(b"W34:000F764DC\r\n")[1]
    via_osdp = osdp.card_read(osdp.FORMAT_RAW_WIEGAND, 26, bytes.fromhex("BDD93740"))
    assert isinstance(w26, CardRead) and isinstance(w34, CardRead)
    assert w26.card_uid == w34.card_uid == via_osdp.card_uid == "007BB26E"


# ---- OSDP card data and feedback ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "length", "data", "expected"),
    [
        # 26 bits 0x2F764DD left-aligned in 4 bytes: 0x2F764DD << 6 = 0xBDD93740
        (1, 26, bytes.fromhex("BDD93740"), CardRead("007BB26E", 123, 45678)),
        (0, 26, bytes.fromhex("BDD93740"), CardRead("007BB26E", 123, 45678)),
        (1, 26, bytes.fromhex("BDD93700"), Rejected("bad_parity")),
        # 34 bits 0x00F764DC << 6 = 0x003DD93700 in 5 bytes
        (1, 34, bytes.fromhex("003DD93700"), CardRead("007BB26E", 123, 45678)),
        (0, 32, bytes.fromhex("04A1B2C3"), CardRead("04A1B2C3")),
        (0, 40, bytes.fromhex("04a1b2c3d4"), CardRead("04A1B2C3D4")),
        (0, 56, bytes.fromhex("04A1B2C3D4E5F6"), CardRead("04A1B2C3D4E5F6")),
        (2, 0, b"04a1b2c3d4", CardRead("04A1B2C3D4")),
        (2, 0, b"not hex", Rejected("bad_frame")),
        (0, 24, bytes.fromhex("A1B2C3"), Rejected("bad_frame")),
        (0, 26, bytes.fromhex("BD"), Rejected("bad_frame")),  # fewer bytes than bits
        (7, 32, bytes.fromhex("04A1B2C3"), Rejected("bad_frame")),
    ],
)
def test_osdp_card_read(fmt: int, length: int, data: bytes, expected) -> None:
    assert osdp.card_read(fmt, length, data) == expected


def test_osdp_raw_bits_packs_left_aligned() -> None:
    assert osdp.raw_bits(26, 0x2F764DD) == bytes.fromhex("BDD93740")
    assert osdp.raw_bits(34, 0x00F764DC) == bytes.fromhex("003DD93700")


def test_osdp_feedback_admit_deny_pending() -> None:
    admit = osdp.feedback(Verdict.ADMIT, 3000)
    assert [c["command"] for c in admit] == [osdp.CMD_LED, osdp.CMD_BUZZER, osdp.CMD_OUTPUT]
    assert admit[0]["on_color"] == osdp.GREEN and admit[0]["timer_count"] == 30
    assert admit[1]["rep_count"] == 1
    assert admit[2]["output_no"] == 0 and admit[2]["timer_count"] == 30
    deny = osdp.feedback(Verdict.DENY, 0)
    assert [c["command"] for c in deny] == [osdp.CMD_LED, osdp.CMD_BUZZER]
    assert deny[0]["on_color"] == osdp.RED and deny[1]["rep_count"] == 3
    assert osdp.feedback(Verdict.PENDING, 0)[0]["on_color"] == osdp.AMBER


# ---- streams: garbage, splits, fuzz -------------------------------------------------------

CODECS = {
    "rdm6300": (rdm6300.decode, [f for f, _ in RDM_VALID]),
    "wiegand": (wiegand.decode, [f for f, *_ in WIEGAND_VALID]),
}


@pytest.mark.parametrize("name", CODECS)
def test_stream_resynchronizes_after_garbage(name: str) -> None:
    decode, frames = CODECS[name]
    frame = frames[0]
    stream = b"\x00\xff" + frame[:5] + b"junk" + frame + frame[:-1] + frame
    rest, results = decode_stream(decode, stream)
    reads = [r for r in results if isinstance(r, CardRead)]
    assert len(reads) == 2 and rest == b""
    assert any(isinstance(r, Rejected) for r in results)


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("cut", [1, 2, 5, 7])
def test_stream_frames_split_across_reads(name: str, cut: int) -> None:
    decode, frames = CODECS[name]
    buffer, reads = b"", []
    data = b"".join(frames)
    for i in range(0, len(data), cut):
        buffer, results = decode_stream(decode, buffer + data[i : i + cut])
        reads += results
    assert all(isinstance(r, CardRead) for r in reads)
    assert len(reads) == len(frames)


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=400, deadline=None)
@given(garbage=st.binary(max_size=64), pick=st.integers(min_value=0, max_value=100))
def test_fuzz_garbage_never_raises_and_never_loses_the_next_frame(
    name: str, garbage: bytes, pick: int
) -> None:
    decode, frames = CODECS[name]
    frame = frames[pick % len(frames)]
    rest, results = decode_stream(decode, garbage + frame)
    expected = decode(frame)[1]
    assert results and results[-1] == expected
    assert rest == b""
    assert all(isinstance(r, CardRead | Rejected) for r in results)


@pytest.mark.parametrize("name", CODECS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzz_any_bytes(name: str, data: bytes) -> None:
    decode, _ = CODECS[name]
    rest, _results = decode_stream(decode, data)
    assert len(rest) < 16  # what is held back is at most one partial frame


@settings(max_examples=300, deadline=None)
@given(fmt=st.integers(-1, 4), length=st.integers(-1, 100), data=st.binary(max_size=16))
def test_fuzz_osdp_card_read(fmt: int, length: int, data: bytes) -> None:
    assert isinstance(osdp.card_read(fmt, length, data), CardRead | Rejected)


# ---- the registry: one codec per SerialProtocol ----------------------------------------


def test_every_serial_protocol_has_a_codec() -> None:
    assert set(SERIAL_CODECS) == set(SerialProtocol)
    for protocol, codec in SERIAL_CODECS.items():
        assert codec.protocol is protocol and codec.default_baud > 0
        assert serial_codec(protocol.value) is codec
    assert SERIAL_CODECS[SerialProtocol.OSDP].decode is None  # the libosdp panel frames it


def test_a_stream_codec_of_the_registry_decodes_its_frames() -> None:
    codec = serial_codec("rdm6300")
    assert codec is not None and codec.decode is not None
    frame, uid = RDM_VALID[0]
    assert decode_stream(codec.decode, frame) == (b"", [CardRead(uid)])


@pytest.mark.parametrize("name", [None, "", "RDM6300", "clock-and-data"])
def test_an_unknown_protocol_has_no_codec(name: str | None) -> None:
    assert serial_codec(name) is None


def test_the_manifest_accepts_exactly_the_registered_protocols() -> None:
    assert tuple(p.value for p in SERIAL_CODECS) == SERIAL_PROTOCOLS
