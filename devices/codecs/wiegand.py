"""Wiegand 26-bit (HID H10301) and 34-bit card numbers, as a Wiegand-to-serial converter sends them.

The accepted frame is the ASCII line that common Wiegand-to-UART/USB converter
boards (and the Arduino/ESP Wiegand sketches that emulate them) print for each
read::

    "W26:" 7 hex digits CR LF        e.g. b"W26:2F764DD\\r\\n"
    "W34:" 9 hex digits CR LF        e.g. b"W34:000F764DC\\r\\n"

The hex digits are the raw Wiegand bits as one number, first bit received most
significant (26 bits right-aligned in 7 digits, 34 bits in 9); CR is optional.

Bit layout (bit 1 is the first received):

- 26-bit H10301: bit 1 even parity over bits 2-13; bits 2-9 facility code
  (8 bits); bits 10-25 card number (16 bits); bit 26 odd parity over bits 14-25.
- 34-bit: bit 1 even parity over bits 2-17; bits 2-17 facility code (16 bits);
  bits 18-33 card number (16 bits); bit 34 odd parity over bits 18-33.

card_uid (one card, one identity): 4 bytes, the facility code as a 16-bit and
the card number as a 16-bit big-endian number, ``FFFF CCCC``: facility 123 and
card 45678 give ``007BB26E`` whether the card is read as 26 or 34 bits, through
this converter or an OSDP reader (devices.codecs.osdp).

Resynchronization: bytes before a ``W`` are noise; a line broken by an
unexpected byte is dropped up to that byte; a wrong parity drops the line.
"""

from __future__ import annotations

from devices.codecs.serial_frames import CardRead, Decoded, Rejected

FORMATS = {26: 7, 34: 9}  # bit count -> hex digits on the line
_HEADERS = (b"W26:", b"W34:")
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
CR, LF = 0x0D, 0x0A


def pack(bits: int, facility: int, number: int) -> int:
    """The raw Wiegand bits, with both parities, for a facility code and card number."""
    if bits not in FORMATS:
        raise ValueError("Wiegand formats are 26 and 34 bits")
    if not 0 <= facility < 1 << (bits - 18) or not 0 <= number < 1 << 16:
        raise ValueError("facility or card number out of range for the format")
    half = (bits - 2) // 2
    data = facility << 16 | number
    even = (data >> half).bit_count() & 1
    odd = ((data & ((1 << half) - 1)).bit_count() + 1) & 1
    return even << (bits - 1) | data << 1 | odd


def unpack(bits: int, value: int) -> CardRead | Rejected:
    """Check both parities of raw Wiegand bits and map them to the card_uid."""
    if bits not in FORMATS or value >> bits:
        return Rejected("bad_frame")
    half = (bits - 2) // 2
    data = (value >> 1) & ((1 << (bits - 2)) - 1)
    even_ok = ((value >> (bits - 1)) + (data >> half).bit_count()) % 2 == 0
    odd_ok = ((value & 1) + (data & ((1 << half) - 1)).bit_count()) % 2 == 1
    if not (even_ok and odd_ok):
        return Rejected("bad_parity")
    facility, number = data >> 16, data & 0xFFFF
    return CardRead(f"{facility:04X}{number:04X}", facility=facility, number=number)


def encode(bits: int, facility: int, number: int) -> bytes:
    """The converter's line for a card."""
    return f"W{bits}:{pack(bits, facility, number):0{FORMATS[bits]}X}\r\n".encode("ascii")


def decode(data: bytes) -> tuple[int, Decoded]:
    """``(used, result)``: see devices.codecs.serial_frames."""
    start = data.find(b"W")
    if start < 0:
        return (len(data), Rejected("noise")) if data else (0, None)
    if start > 0:
        return start, Rejected("noise")
    head = data[:4]
    if not any(h.startswith(head) for h in _HEADERS):
        for i in range(1, len(head)):  # the first byte that fits no header
            if not any(h.startswith(head[: i + 1]) for h in _HEADERS):
                return i, Rejected("bad_frame")
    if len(data) < 4:
        return 0, None
    bits = int(data[1:3])
    end = 4 + FORMATS[bits]
    for i in range(4, min(len(data), end)):
        if data[i] not in _HEX_DIGITS:
            return i, Rejected("bad_frame")
    i = end
    if len(data) > i and data[i] == CR:
        i += 1
    if len(data) <= i:
        return 0, None
    if data[i] != LF:
        return i, Rejected("bad_frame")
    return i + 1, unpack(bits, int(data[4:end], 16))
