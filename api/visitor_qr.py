"""Issuing visitor QR tokens: the gateway's command-signing key, read from its file.

The API signs tokens with the same key the gateway signs commands with (and verifies
tokens with), so a terminal that pinned that key can check a token offline too. The key
file is the gateway's (CAMPUSGATE_SIGNING_KEY_FILE or <data dir>/keys/command-signing.pem);
the API reads it and never makes one. A token opens doors like the card: every fetch is
audited (`fetch_qr` on the pass; the token itself is not logged).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import HTTPException, Request, status

from devices.codecs.visitor_qr import QrClaims, encode_token
from gateway.services import visitor_passes as service
from gateway.store.audit import record_audit

# The gateway's default key path under the data dir (gateway/pipeline/signing.py).
KEY_PATH = ("keys", "command-signing.pem")


def _signing_key(request: Request) -> Ed25519PrivateKey:
    state = request.app.state
    key: Ed25519PrivateKey | None = getattr(state, "qr_signing_key", None)
    if key is not None:
        return key
    settings = state.settings
    if not settings.sign_commands:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "CAMPUSGATE_SIGN_COMMANDS is off: the gateway signs nothing and verifies no QR code",
        )
    path = settings.signing_key_file or settings.data_dir.joinpath(*KEY_PATH)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"no command-signing key to sign QR codes with ({exc}); start the gateway once "
            "or run `campusgate keys show`",
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the signing key is not Ed25519")
    state.qr_signing_key = loaded
    return loaded


def qr_answer(
    request: Request, pass_id: int, card_uid: str, ends_at: datetime
) -> dict[str, object]:
    """The token of an approved pass, and what it carries."""
    key = _signing_key(request)
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    token = encode_token(QrClaims(pass_id, card_uid, ends_at), public_raw, key.sign)
    return {"pass_id": pass_id, "token": token, "ends_at": ends_at}


async def fetch_qr(
    conn: asyncpg.Connection, request: Request, row: dict[str, Any], *, by: str
) -> dict[str, object]:
    """The token of an approved pass (409 else), its handing-out audited as `fetch_qr`."""
    answer = qr_answer(request, *service.issued(row))
    await record_audit(
        conn, by, "fetch_qr", "visitor_pass", str(row["id"]),
        after={"card_uid": row["card_uid"], "ends_at": row["ends_at"].isoformat()},
    )  # fmt: skip
    return answer
