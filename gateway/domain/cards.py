"""Card identifiers in the one form every reader kind maps to."""

from __future__ import annotations

import re

CARD_UID_BYTES = frozenset({4, 5, 7, 10})
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


class CardUidError(ValueError):
    """A card UID that is not hex of 4, 5, 7 or 10 bytes."""


def normalize_card_uid(raw: str) -> str:
    """Return the canonical upper-case hex form of a card UID, or raise CardUidError."""
    if not isinstance(raw, str):
        raise CardUidError(f"card_uid must be a hex string, got {type(raw).__name__}")
    uid = raw.strip()
    if not uid or not _HEX.match(uid) or len(uid) % 2:
        raise CardUidError(f"card_uid {raw!r} is not an even-length hex string")
    if len(uid) // 2 not in CARD_UID_BYTES:
        raise CardUidError(f"card_uid {raw!r} has {len(uid) // 2} bytes; expected 4, 5, 7 or 10")
    return uid.upper()
