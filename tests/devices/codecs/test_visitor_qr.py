"""Visitor QR tokens pinned to bytes built from docs/protocol.md ("Visitor QR tokens"),
not from the codec, so one bug cannot hide in both the issuer and the verifier."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.visitor_qr import (
    QrClaims,
    QrInvalid,
    QrTokenError,
    decode_token,
    encode_token,
    unmatched_card_uid,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes_raw()
CLAIMS = QrClaims(42, "0123456789ABCDEF0011", datetime(2026, 12, 3, 18, 0, tzinfo=UTC))
TOKEN = (
    "CGQ1.AAAAAAAAACoBI0VniavN7wARAAAAAGsRriBWR1qnVGNHTA."
    "WrmozDF04Hzy0QvHk0KClm36gauKIhIgGyOmXUQL5GSEcp2ouAaDnTKiLAQdbvfVR1nWwredhCJX1v5KK68uCg"
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_claims_are_the_documented_34_bytes_and_signature():
    claims = (
        (42).to_bytes(8, "big")
        + bytes.fromhex("0123456789ABCDEF0011")
        + int(CLAIMS.ends_at.timestamp()).to_bytes(8, "big")
        + hashlib.sha256(PUBLIC).digest()[:8]
    )
    signature = KEY.sign(b"campusgate-visitor-qr-v1\n" + claims)  # Ed25519 is deterministic
    assert f"CGQ1.{_b64url(claims)}.{_b64url(signature)}" == TOKEN
    assert encode_token(CLAIMS, PUBLIC, KEY.sign) == TOKEN
    assert len(TOKEN) == 138


def test_decode_gives_back_the_claims():
    assert decode_token(TOKEN, PUBLIC) == CLAIMS
    lower = encode_token(QrClaims(7, "abcdefabcdefabcdef00", CLAIMS.ends_at), PUBLIC, KEY.sign)
    assert decode_token(lower, PUBLIC).card_uid == "ABCDEFABCDEFABCDEF00"


def _flip(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :]


@pytest.mark.parametrize(
    ("token", "cause"),
    [
        (_flip(TOKEN, 12), QrInvalid.BAD_SIGNATURE),  # pass id altered
        (_flip(TOKEN, 30), QrInvalid.BAD_SIGNATURE),  # card altered
        (_flip(TOKEN, 60), QrInvalid.BAD_SIGNATURE),  # signature altered
        (TOKEN.rsplit(".", 1)[0] + "." + "A" * 86, QrInvalid.BAD_SIGNATURE),
        (TOKEN[:-1], QrInvalid.MALFORMED),
        (TOKEN + "A", QrInvalid.MALFORMED),
        ("CGQ2" + TOKEN[4:], QrInvalid.MALFORMED),
        ("", QrInvalid.MALFORMED),
        ("x" * 5000, QrInvalid.MALFORMED),
        ("CGQ1." + "!" * 46 + "." + "A" * 86, QrInvalid.MALFORMED),
    ],
)
def test_altered_or_garbled_tokens_are_refused_with_a_cause(token, cause):
    with pytest.raises(QrTokenError) as refused:
        decode_token(token, PUBLIC)
    assert refused.value.cause is cause


def test_a_token_of_another_key_is_wrong_key_even_when_well_signed():
    other = Ed25519PrivateKey.generate()
    foreign = encode_token(CLAIMS, other.public_key().public_bytes_raw(), other.sign)
    with pytest.raises(QrTokenError) as refused:
        decode_token(foreign, PUBLIC)
    assert refused.value.cause is QrInvalid.WRONG_KEY


def test_unmatched_card_uid_is_a_stable_10_byte_id():
    uid = unmatched_card_uid("garbage")
    assert len(bytes.fromhex(uid)) == 10 and uid == uid.upper()
    assert unmatched_card_uid("garbage") == uid != unmatched_card_uid("garbage2")


def test_encoding_refuses_a_card_of_another_length():
    with pytest.raises(ValueError, match="10 bytes"):
        encode_token(QrClaims(1, "0A0B0C0D", CLAIMS.ends_at), PUBLIC, KEY.sign)
