"""The gateway's command-signing key: its file under the data dir, and the signer it makes.

Every command to a device is signed with one Ed25519 key (contract: "Signed commands" in
docs/protocol.md). All workers of one campus read the same key file, so a terminal pins
one public key whichever worker answers it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_DIR = "keys"
KEY_FILE = "command-signing.pem"
ALGORITHM = "Ed25519"


class SigningKeyError(Exception):
    """The key file cannot be read, made or used; the message says what to do."""


def default_key_file(data_dir: Path) -> Path:
    return data_dir / KEY_DIR / KEY_FILE


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    """The `kid` of a command: the first 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5), as in the `sig` field."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """What devices pin: published retained on `P/gateway/signing-key`, shown by `keys show`."""

    kid: str
    public_raw: bytes
    public_pem: str

    @classmethod
    def of(cls, key: Ed25519PrivateKey) -> PublicKeyInfo:
        raw = raw_public_key(key)
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key_id(raw), raw, pem.decode("ascii"))

    @property
    def public_key(self) -> str:
        return b64url(self.public_raw)

    def announcement(self) -> bytes:
        return json.dumps(
            {"alg": ALGORITHM, "kid": self.kid, "public_key": self.public_key},
            separators=(",", ":"),
        ).encode()


def load_key(path: Path) -> Ed25519PrivateKey:
    """The private key in `path` (PKCS#8 PEM, unencrypted)."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read the command-signing key {path}: {exc.strerror or exc}; "
            "check CAMPUSGATE_SIGNING_KEY_FILE and the file's owner"
        ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(
            f"{path} is not an unencrypted PEM private key ({exc}); "
            "restore it from a backup, or move it away and let the gateway make a new one "
            "(then give the terminals the new public key: campusgate keys show)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _write_new(path: Path, key: Ed25519PrivateKey) -> bool:
    """Write `key` to `path` only if nothing is there yet; False when another process won."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        # A hard link fails if the name exists: two workers starting at once keep one key.
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key in `path`, made (mode 0600, directory 0700) when absent; True when made now."""
    if not path.exists():
        try:
            made = _write_new(path, Ed25519PrivateKey.generate())
        except OSError as exc:
            raise SigningKeyError(
                f"cannot make the command-signing key {path}: {exc.strerror or exc}; "
                "check that the data dir is writable, or set CAMPUSGATE_SIGNING_KEY_FILE"
            ) from None
        if made:
            return load_key(path), True
    return load_key(path), False


def rotate_key(path: Path, *, now: datetime | None = None) -> tuple[Path | None, Ed25519PrivateKey]:
    """A new key in `path`; the old one is kept as `<name>.<UTC time>.old`. Returns (old, new)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    old: Path | None = None
    if path.exists():
        load_key(path)  # refuse to move away something that is not our key
        old = path.with_name(f"{path.name}.{stamp}.old")
        if old.exists():
            raise SigningKeyError(f"{old} exists already; wait a second and rotate again")
        os.replace(path, old)
    key = Ed25519PrivateKey.generate()
    try:
        if not _write_new(path, key):
            raise SigningKeyError(f"{path} appeared while rotating; run `keys rotate` once only")
    except OSError as exc:
        raise SigningKeyError(f"cannot write {path}: {exc.strerror or exc}") from None
    return old, key


def rfc3339_ms(epoch_ms: int) -> str:
    """`2026-12-03T09:00:00.000Z` for milliseconds since the epoch (UTC)."""
    seconds, ms = divmod(epoch_ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{ms:03d}Z"


class Ed25519CommandSigner:
    """Signs commands (devices.codecs.contract_json.CommandSigner) with `seq` and `ts`.

    `seq` counts in microseconds of the wall clock and never repeats or goes back within
    a process: it starts above the previous run's numbers and stays unique per command,
    which is what makes two otherwise equal commands differ.
    """

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.info = PublicKeyInfo.of(key)
        self._seq = 0
        # The allowlist thread and the event loop both stamp: `seq` must stay unique.
        self._lock = threading.Lock()
        # `ts` of the current millisecond: several commands leave within one at load.
        self._ts_ms = -1
        self._ts = ""

    @property
    def kid(self) -> str:
        return self.info.kid

    def stamp(self) -> tuple[int, str]:
        with self._lock:
            now_ns = time.time_ns()
            self._seq = max(self._seq + 1, now_ns // 1000)
            now_ms = now_ns // 1_000_000
            if now_ms != self._ts_ms:
                self._ts_ms, self._ts = now_ms, rfc3339_ms(now_ms)
            return self._seq, self._ts

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)
