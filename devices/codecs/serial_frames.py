"""What a serial-reader codec yields, shared by the RDM6300, Wiegand and OSDP codecs.

A codec is stateless, in the manner of pymodbus' framers: ``decode(data)`` returns
``(used, result)``. ``used == 0`` means "need more bytes" (``result`` is None);
otherwise the caller drops ``used`` bytes from the front of its buffer and
``result`` is a :class:`CardRead` or a :class:`Rejected` naming why the bytes were
dropped (so the caller can count them). A codec never raises on any input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CardRead:
    """A card presented at a reader, in the one card_uid form (gateway.domain.cards)."""

    card_uid: str
    facility: int | None = None  # Wiegand only
    number: int | None = None  # Wiegand only


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes a codec dropped: ``noise`` (outside any frame), ``bad_frame`` (a broken or
    truncated frame), ``bad_checksum`` or ``bad_parity``."""

    reason: str


Decoded = CardRead | Rejected | None
Decoder = Callable[[bytes], tuple[int, Decoded]]


def decode_stream(decode: Decoder, data: bytes) -> tuple[bytes, list[CardRead | Rejected]]:
    """Decode every complete frame in ``data``; return the undecoded tail and the results."""
    results: list[CardRead | Rejected] = []
    while data:
        used, result = decode(data)
        if used == 0:
            break
        data = data[used:]
        if result is not None:
            results.append(result)
    return data, results
