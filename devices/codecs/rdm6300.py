"""RDM6300 / EM4100 125 kHz reader frames (UART, 9600 8N1 by default).

One frame is 14 bytes::

    STX(0x02) | 10 ASCII hex digits | 2 ASCII hex digits | ETX(0x03)

The ten digits are the 5 bytes of the EM4100 identifier (a version or customer
byte, then the 32-bit tag number); the two digits are the XOR of those 5 bytes.
The card_uid is the 5 bytes as 10 upper-case hex digits, e.g. frame
``02 "0100073A8D" "B1" 03`` gives ``0100073A8D``.

Resynchronization: bytes before an STX are noise; a frame broken by a non-hex
byte or a new STX is dropped up to that byte, so a valid frame right after
garbage is never lost.
"""

from __future__ import annotations

from devices.codecs.serial_frames import CardRead, Decoded, Rejected

STX = 0x02
ETX = 0x03
FRAME_LEN = 14
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


def checksum(tag: bytes) -> int:
    """XOR of the 5 tag bytes."""
    value = 0
    for byte in tag:
        value ^= byte
    return value


def encode(tag: bytes) -> bytes:
    """The frame an RDM6300 sends for the 5-byte EM4100 identifier ``tag``."""
    if len(tag) != 5:
        raise ValueError("an EM4100 identifier has 5 bytes")
    body = tag.hex().upper() + f"{checksum(tag):02X}"
    return bytes([STX]) + body.encode("ascii") + bytes([ETX])


def decode(data: bytes) -> tuple[int, Decoded]:
    """``(used, result)``: see devices.codecs.serial_frames."""
    start = data.find(STX)
    if start < 0:
        return (len(data), Rejected("noise")) if data else (0, None)
    if start > 0:
        return start, Rejected("noise")
    for i in range(1, min(len(data), FRAME_LEN - 1)):
        if data[i] not in _HEX_DIGITS:
            return i, Rejected("bad_frame")  # resume at the offending byte (it may be an STX)
    if len(data) < FRAME_LEN:
        return 0, None
    if data[FRAME_LEN - 1] != ETX:
        return FRAME_LEN - 1, Rejected("bad_frame")
    tag = bytes.fromhex(data[1:11].decode("ascii"))
    if int(data[11:13].decode("ascii"), 16) != checksum(tag):
        return FRAME_LEN, Rejected("bad_checksum")
    return FRAME_LEN, CardRead(tag.hex().upper())
