"""Commands signed in batches: one Ed25519 signature over a Merkle tree root per batch.

Scheme `ed25519-merkle-v1` (docs/protocol.md, "Signed commands"): the leaves are the
commands (each bound to its device id), the tree is RFC 6962's (Certificate Transparency),
and each command carries the batch's signature plus its own audit path, so a terminal
checks its one command without seeing the others. A batch of one has an empty path.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol

ALG = "ed25519-merkle-v1"
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class CommandSigner(Protocol):
    """What signs commands (gateway.pipeline.signing holds the key; the codec stays pure)."""

    @property
    def kid(self) -> str:
        """Key id: the first 16 hex digits of SHA-256 over the raw 32-byte public key."""
        ...

    def stamp(self) -> tuple[int, str]:
        """The next `seq` and the `ts` (RFC 3339, the gateway's clock) of a command."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        ...


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> bytes:
    """Base64url without padding (RFC 4648 section 5); binascii: half base64's time."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def leaf_hash(device_id: str, body: bytes) -> bytes:
    """SHA-256(0x00 || device id || "\\n" || the command's bytes without `path` and `sig`)."""
    return hashlib.sha256(LEAF_PREFIX + device_id.encode("utf-8") + b"\n" + body).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def tree_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The tree's levels, leaves first, root last (one hash).

    Pairs are hashed left to right and a lone last node moves up unchanged: the same tree
    as RFC 6962's recursive split at the largest power of two below the size.
    """
    if not leaves:
        raise ValueError("a batch needs at least one command")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def audit_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """The sibling hashes from leaf `index` up to the root (RFC 6962 PATH, bottom first)."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def root_message(kid: str, batch: int, ts: str, size: int, root: bytes) -> bytes:
    """What the batch signature covers (ASCII lines, then the root's 32 raw bytes)."""
    return f"{ALG}\n{kid}\n{batch}\n{ts}\n{size}\n".encode("ascii") + root


def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sign_batch(
    commands: Sequence[tuple[str, dict[str, Any]]], signer: CommandSigner
) -> list[bytes]:
    """The payloads of `commands` ((device id, fields) each), in order, under one signature.

    Each payload is `fields` plus `alg`, `seq`, `ts`, `kid`, `batch`, `leaf_index` and
    `tree_size` (all covered by its leaf), then `path` and `sig` appended last.
    """
    batch, ts = signer.stamp()
    size = len(commands)
    bodies = []
    for index, (_, fields) in enumerate(commands):
        seq = batch if index == 0 else signer.stamp()[0]
        bodies.append(
            _compact(
                {
                    **fields,
                    "alg": ALG,
                    "seq": seq,
                    "ts": ts,
                    "kid": signer.kid,
                    "batch": batch,
                    "leaf_index": index,
                    "tree_size": size,
                }
            )
        )
    levels = tree_levels([leaf_hash(d, b) for (d, _), b in zip(commands, bodies, strict=True)])
    signature = (
        b',"sig":"'
        + b64url(signer.sign(root_message(signer.kid, batch, ts, size, levels[-1][0])))
        + b'"}'
    )
    encoded = [[b'"' + b64url(h) + b'"' for h in level] for level in levels[:-1]]
    payloads = []
    for index, body in enumerate(bodies):
        path = []
        at = index
        for level in encoded:
            if at ^ 1 < len(level):
                path.append(level[at ^ 1])
            at >>= 1
        payloads.append(body[:-1] + b',"path":[' + b",".join(path) + b"]" + signature)
    return payloads
