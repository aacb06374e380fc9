"""Visitor pass QR tokens: compact, Ed25519-signed text a terminal's scanner reads.

Format `CGQ1.<claims>.<signature>` (docs/protocol.md, "Visitor QR tokens"): both parts
base64url without padding. The claims are 34 bytes, big-endian:

    pass id (8) | card uid (10) | pass end, Unix seconds (8) | key id (8)

The key id is the first 8 bytes of SHA-256 over the raw public key (the first 16 hex
digits of a command's `kid`). The signature covers `campusgate-visitor-qr-v1\\n` + the
claims, with the gateway's command-signing key: the prefix keeps a token and a command's
signature from ever standing in for each other. The whole token is 138 ASCII characters.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PREFIX = "CGQ1"
DOMAIN = b"campusgate-visitor-qr-v1\n"
CARD_BYTES = 10
_CLAIMS = struct.Struct(">Q10sQ8s")
MAX_TOKEN_CHARS = 256  # far above a well-formed token; bounds the work on hostile input
_SHAPE = re.compile(r"^CGQ1\.([A-Za-z0-9_-]{46})\.([A-Za-z0-9_-]{86})$")


class QrInvalid(StrEnum):
    """Why a token was refused (the gateway counts `qr_invalid` by these)."""

    MALFORMED = "malformed"  # not a token of this format
    WRONG_KEY = "wrong_key"  # signed for another key (another campus, or a rotated key)
    BAD_SIGNATURE = "bad_signature"  # forged or altered


class QrTokenError(ValueError):
    def __init__(self, cause: QrInvalid, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class QrClaims:
    pass_id: int
    card_uid: str  # 20 upper-case hex digits
    ends_at: datetime  # UTC, whole seconds


def key_id8(public_raw: bytes) -> bytes:
    return hashlib.sha256(public_raw).digest()[:8]


def _b64(data: bytes) -> str:
    return (
        binascii.b2a_base64(data, newline=False)
        .decode("ascii")
        .rstrip("=")
        .translate(str.maketrans("+/", "-_"))
    )


def _unb64(text: str) -> bytes:
    padded = text.translate(str.maketrans("-_", "+/")) + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded, strict_mode=True)


def _claims_bytes(claims: QrClaims, kid: bytes) -> bytes:
    uid = bytes.fromhex(claims.card_uid)
    if len(uid) != CARD_BYTES:
        raise ValueError(f"a visitor card uid has {CARD_BYTES} bytes, not {len(uid)}")
    if claims.pass_id < 0:
        raise ValueError("pass id must not be negative")
    return _CLAIMS.pack(claims.pass_id, uid, int(claims.ends_at.timestamp()), kid)


def encode_token(claims: QrClaims, public_raw: bytes, sign: Callable[[bytes], bytes]) -> str:
    """The token text; `sign` is the Ed25519 private key's sign (the codec holds no key)."""
    body = _claims_bytes(claims, key_id8(public_raw))
    return f"{PREFIX}.{_b64(body)}.{_b64(sign(DOMAIN + body))}"


def decode_token(token: str, public_raw: bytes) -> QrClaims:
    """The claims of a token signed with the key whose raw public half is `public_raw`;
    QrTokenError (with its cause) for anything else. Expiry is not judged here: the door
    decides by the pass's grants and the gateway's reader (gateway/pipeline/visitor_qr.py)."""
    if len(token) > MAX_TOKEN_CHARS or not (shape := _SHAPE.match(token)):
        raise QrTokenError(QrInvalid.MALFORMED, "not a CGQ1 visitor token")
    try:
        body, signature = _unb64(shape.group(1)), _unb64(shape.group(2))
    except binascii.Error:
        raise QrTokenError(QrInvalid.MALFORMED, "token parts are not base64url") from None
    if len(body) != _CLAIMS.size or len(signature) != 64:
        raise QrTokenError(QrInvalid.MALFORMED, "token parts have the wrong length")
    pass_id, uid, ends, kid = _CLAIMS.unpack(body)
    if kid != key_id8(public_raw):
        raise QrTokenError(QrInvalid.WRONG_KEY, "token signed with another key")
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, DOMAIN + body)
    except InvalidSignature:
        raise QrTokenError(QrInvalid.BAD_SIGNATURE, "token signature does not verify") from None
    try:
        ends_at = datetime.fromtimestamp(ends, UTC)
    except (OverflowError, OSError, ValueError):
        raise QrTokenError(QrInvalid.MALFORMED, "token end is out of range") from None
    return QrClaims(pass_id, uid.hex().upper(), ends_at)


def unmatched_card_uid(token: str) -> str:
    """A 10-byte card id derived from a refused token: it matches nobody, so the door
    denies it `unknown_card` (and raises `outsider`) like any unknown card, and the same
    bad token always maps to the same id in the log."""
    digest = hashlib.sha256(b"campusgate-invalid-qr\n" + token.encode("utf-8", "replace"))
    return digest.hexdigest()[: CARD_BYTES * 2].upper()
