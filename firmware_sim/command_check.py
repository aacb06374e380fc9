"""How a terminal verifies a signed command (docs/protocol.md, "Signed commands").

Written from the protocol text, not from the gateway's signer (devices.codecs), so one
bug cannot hide on both sides; tests/devices/codecs/test_signed_commands.py pins both to the
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

ALG = "ed25519-merkle-v1"
PATH_MARK = b',"path":['
# After the signed bytes: the audit path (hashes of 32 bytes: 43 base64url characters
# each) and the 64-byte signature (86 characters), nothing else, exactly so spelled.
_TAIL = re.compile(
    rb'^,"path":\[((?:"[A-Za-z0-9_-]{43}"(?:,"[A-Za-z0-9_-]{43}")*)?)\],"sig":"([A-Za-z0-9_-]{86})"\}$'
)
WINDOW_S = 30.0  # a command stamped further than this from the terminal's clock is stale
MAX_TREE_SIZE = 1 << 16  # far above any batch the gateway makes; bounds the path's length


class Refusal(StrEnum):
    """Why a terminal refused a command (what it counts)."""

    UNSIGNED = "unsigned"  # no `path` and `sig` at the end
    WRONG_KEY = "wrong_key"  # `kid` is not the pinned key's
    BAD_SIGNATURE = "bad_signature"  # forged, altered, or signed for another device
    BAD_PATH = "bad_path"  # the audit path does not fit the leaf index and tree size
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


def _b64url(text: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text:
        # The last character carries unused bits: only the canonical spelling is taken.
        raise CommandRefused(Refusal.BAD_SIGNATURE, "path or sig is not canonical base64url")
    return raw


def split_signed(payload: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(the signed JSON bytes, the audit path, the 64-byte signature).

    Cuts `,"path":[...],"sig":"..."}` off the end and puts back the `}`.
    """
    at = payload.rfind(PATH_MARK)
    if at < 0 or not payload.endswith(b'"}'):
        raise CommandRefused(Refusal.UNSIGNED, "the command carries no path and sig")
    tail = _TAIL.match(payload[at:])
    if tail is None:
        raise CommandRefused(Refusal.BAD_SIGNATURE, "path or sig is malformed")
    hashes = tail.group(1)
    path = [_b64url(h[1:-1]) for h in hashes.split(b",")] if hashes else []
    return payload[:at] + b"}", path, _b64url(tail.group(2))


def leaf_hash(device_id: str, body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + device_id.encode("utf-8") + b"\n" + body).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """The tree root that `path` proves for leaf `index` of `size` (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        raise CommandRefused(Refusal.BAD_PATH, f"leaf_index {index} is not below tree_size {size}")
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise CommandRefused(Refusal.BAD_PATH, "the path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise CommandRefused(Refusal.BAD_PATH, "the path is shorter than the tree is deep")
    return node


def root_message(kid: str, batch: int, ts: str, size: int, root: bytes) -> bytes:
    return f"{ALG}\n{kid}\n{batch}\n{ts}\n{size}\n".encode("ascii") + root


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CommandRefused(Refusal.BAD_PATH, f"{name} {value!r} is not a whole number")
    return value


def verify_signed(
    payload: bytes, device_id: str, key: Ed25519PublicKey, kid: str
) -> tuple[dict[str, Any], bytes]:
    """The fields and leaf hash of a message signed in the batch scheme for `device_id`
    (a command, an allowlist, an upload's ack); CommandRefused when it does not verify.
    Freshness and replay are the caller's: a retained allowlist is received again."""
    body_bytes, path, signature = split_signed(payload)
    try:
        body = json.loads(body_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CommandRefused(Refusal.BAD_SIGNATURE, "the signed part is not JSON") from None
    if not isinstance(body, dict):
        raise CommandRefused(Refusal.BAD_SIGNATURE, "the signed part is not a JSON object")
    if body.get("alg") != ALG:
        raise CommandRefused(Refusal.BAD_SIGNATURE, f"alg {body.get('alg')!r} is not {ALG}")
    if body.get("kid") != kid:
        raise CommandRefused(Refusal.WRONG_KEY, f"kid {body.get('kid')!r} is not the pinned {kid}")
    size = _count(body, "tree_size")
    if size > MAX_TREE_SIZE:
        raise CommandRefused(Refusal.BAD_PATH, f"tree_size {size} is implausibly large")
    leaf = leaf_hash(device_id, body_bytes)
    root = root_from_path(leaf, _count(body, "leaf_index"), size, path)
    batch, ts = body.get("batch"), body.get("ts")
    if not isinstance(batch, int) or not isinstance(ts, str) or not ts.isascii():
        raise CommandRefused(Refusal.BAD_SIGNATURE, "batch or ts is missing or malformed")
    try:
        key.verify(signature, root_message(kid, batch, ts, size, root))
    except InvalidSignature:
        raise CommandRefused(
            Refusal.BAD_SIGNATURE, f"the signature does not verify for {device_id}"
        ) from None
    return body, leaf


class CommandVerifier:
    """One terminal's check of its commands against the pinned public key.

    Remembers the leaf hashes of the commands it accepted for twice the window (an older command is stale
    anyway), so the same signed command is acted on once.
    """

    def __init__(self, device_id: str, public_raw: bytes, *, window_s: float = WINDOW_S) -> None:
        self.device_id = device_id
        self.kid = key_id(public_raw)
        self.public_raw = public_raw
        self._key = Ed25519PublicKey.from_public_bytes(public_raw)
        self.window_s = window_s
        self._accepted: dict[bytes, float] = {}  # leaf hash -> when accepted (time.time())

    def check(self, payload: bytes, now: float | None = None) -> dict[str, Any]:
        """The command's fields, taken from the signed bytes only; CommandRefused otherwise."""
        now = time.time() if now is None else now
        body, leaf = verify_signed(payload, self.device_id, self._key, self.kid)
        self._check_fresh(body, now)
        self._forget_older_than(now - 2 * self.window_s)
        # The leaf, not the signature: one signature covers every command of its batch.
        if leaf in self._accepted:
            raise CommandRefused(Refusal.REPLAYED, f"seq {body.get('seq')} was accepted before")
        self._accepted[leaf] = now
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
            leaf, at = next(iter(self._accepted.items()))
            if at >= horizon:
                break
            del self._accepted[leaf]
