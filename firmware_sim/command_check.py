"""How a terminal verifies a signed command (docs/protocol.md, "Signed commands").

Written from the protocol text, not from the gateway's signer (devices.codecs), so one
bug cannot hide on both sides; tests/codecs/test_signed_commands.py pins both to the
same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIG_MARK = b',"sig":"'
# 64 signature bytes are 86 base64url characters without padding.
_SIG_TEXT = re.compile(rb"^[A-Za-z0-9_-]{86}$")
WINDOW_S = 30.0  # a command stamped further than this from the terminal's clock is stale


class Refusal(StrEnum):
    """Why a terminal refused a command (what it counts)."""

    UNSIGNED = "unsigned"  # no `sig` at the end
    WRONG_KEY = "wrong_key"  # `kid` is not the pinned key's
    BAD_SIGNATURE = "bad_signature"  # forged, altered, or signed for another device
    REPLAYED = "replayed"  # the same signed command was accepted before
    STALE = "stale"  # `ts` missing or outside the window around the terminal's clock


class CommandRefused(Exception):
    def __init__(self, cause: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_key_from_text(text: str) -> bytes:
    """The raw 32 bytes of a public key given in base64url (padding optional) or base64."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"not a base64 public key: {text!r}") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


def split_signed(payload: bytes) -> tuple[bytes, bytes]:
    """(the signed JSON bytes, the 64-byte signature): cut `,"sig":"..."}` and put back `}`."""
    at = payload.rfind(SIG_MARK)
    if at < 0 or not payload.endswith(b'"}'):
        raise CommandRefused(Refusal.UNSIGNED, "the command carries no sig")
    text = payload[at + len(SIG_MARK) : -2]
    if not _SIG_TEXT.match(text):
        raise CommandRefused(Refusal.BAD_SIGNATURE, "sig is not 86 base64url characters")
    signature = base64.urlsafe_b64decode(text + b"==")
    if base64.urlsafe_b64encode(signature).rstrip(b"=") != text:
        # The last character carries 2 unused bits: only the canonical spelling is taken.
        raise CommandRefused(Refusal.BAD_SIGNATURE, "sig is not canonical base64url")
    return payload[:at] + b"}", signature


class CommandVerifier:
    """One terminal's check of its commands against the pinned public key.

    Remembers the signatures it accepted for twice the window (an older command is stale
    anyway), so the same signed command is acted on once.
    """

    def __init__(self, device_id: str, public_raw: bytes, *, window_s: float = WINDOW_S) -> None:
        self.device_id = device_id
        self.kid = key_id(public_raw)
        self.public_raw = public_raw
        self._key = Ed25519PublicKey.from_public_bytes(public_raw)
        self.window_s = window_s
        self._accepted: dict[bytes, float] = {}  # signature -> when accepted (time.time())

    def check(self, payload: bytes, now: float | None = None) -> dict[str, Any]:
        """The command's fields, taken from the signed bytes only; CommandRefused otherwise."""
        now = time.time() if now is None else now
        body_bytes, signature = split_signed(payload)
        try:
            body = json.loads(body_bytes)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise CommandRefused(Refusal.BAD_SIGNATURE, "the signed part is not JSON") from None
        if not isinstance(body, dict):
            raise CommandRefused(Refusal.BAD_SIGNATURE, "the signed part is not a JSON object")
        if body.get("kid") != self.kid:
            raise CommandRefused(
                Refusal.WRONG_KEY, f"kid {body.get('kid')!r} is not the pinned {self.kid}"
            )
        message = self.device_id.encode("utf-8") + b"\n" + body_bytes
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            raise CommandRefused(
                Refusal.BAD_SIGNATURE, f"the signature does not verify for {self.device_id}"
            ) from None
        self._check_fresh(body, now)
        self._forget_older_than(now - 2 * self.window_s)
        if signature in self._accepted:
            raise CommandRefused(Refusal.REPLAYED, f"seq {body.get('seq')} was accepted before")
        self._accepted[signature] = now
        return body

    def _check_fresh(self, body: dict[str, Any], now: float) -> None:
        ts = body.get("ts")
        if not isinstance(ts, str):
            raise CommandRefused(Refusal.STALE, "the command has no ts")
        try:
            parsed = datetime.fromisoformat(ts)
            if parsed.tzinfo is None:
                raise ValueError("no offset")
            stamped = parsed.timestamp()
        except (ValueError, OverflowError):
            raise CommandRefused(
                Refusal.STALE, f"ts {ts!r} is not RFC 3339 with an offset"
            ) from None
        if abs(now - stamped) > self.window_s:
            raise CommandRefused(
                Refusal.STALE, f"ts {ts} is {now - stamped:+.0f} s from the terminal's clock"
            )

    def _forget_older_than(self, horizon: float) -> None:
        # Insertion order is acceptance order: drop from the front.
        while self._accepted:
            signature, at = next(iter(self._accepted.items()))
            if at >= horizon:
                break
            del self._accepted[signature]
