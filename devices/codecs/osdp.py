"""OSDP (IEC 60839-11-5) card data in, reader feedback out.

libosdp (the ``osdp`` package) frames, checks and encrypts the OSDP packets
itself; this codec is the part above it, pure and pinned by vectors:

- ``card_read(format, length, data)`` maps an ``osdp_RAW`` card report (its
  format code, its bit count and its bits packed first bit most significant,
  left-aligned) to the one card_uid form: 26- and 34-bit Wiegand data goes
  through devices.codecs.wiegand (facility and card number, ``FFFFCCCC``), so a
  card gives the same uid at an OSDP reader as behind a Wiegand converter;
  32, 40, 56 or 80 bits are the card's own 4, 5, 7 or 10 byte UID (as MQTT
  terminals send it); ASCII card data must itself be such a hex UID.
- ``feedback(verdict, unlock_ms)`` is the list of libosdp command dicts that
  show a decision: admit = green LED and one short beep for ``unlock_ms`` and
  output 0 (the lock relay) pulsed for ``unlock_ms``; deny = red LED and three
  beeps; pending = amber LED while the gateway waits for a temperature.
"""

from __future__ import annotations

from devices.codecs import wiegand
from devices.codecs.serial_frames import CardRead, Rejected
from gateway.domain.cards import CARD_UID_BYTES, CardUidError, normalize_card_uid
from gateway.domain.decisions import Verdict

# libosdp's numbering (osdp.h), the same as the osdp package's constants.
FORMAT_RAW_UNSPECIFIED = 0
FORMAT_RAW_WIEGAND = 1
FORMAT_ASCII = 2
CMD_OUTPUT, CMD_LED, CMD_BUZZER = 1, 2, 3
# OSDP LED colours (spec table "osdp_LED colour").
BLACK, RED, GREEN, AMBER = 0, 1, 2, 3
LOCK_OUTPUT = 0
_TENTHS = 100  # OSDP timers count 100 ms units


def card_read(fmt: int, length: int, data: bytes) -> CardRead | Rejected:
    """The card_uid of one osdp_RAW / osdp_FMT card report."""
    if fmt == FORMAT_ASCII:
        try:
            return CardRead(normalize_card_uid(data.decode("ascii")))
        except (UnicodeDecodeError, CardUidError):
            return Rejected("bad_frame")
    if fmt not in (FORMAT_RAW_UNSPECIFIED, FORMAT_RAW_WIEGAND):
        return Rejected("bad_frame")
    if length <= 0 or len(data) * 8 < length or len(data) > (length + 7) // 8:
        return Rejected("bad_frame")
    value = int.from_bytes(data, "big") >> (len(data) * 8 - length)
    if length in wiegand.FORMATS:
        return wiegand.unpack(length, value)
    if length % 8 == 0 and length // 8 in CARD_UID_BYTES:
        return CardRead(data.hex().upper())
    return Rejected("bad_frame")


def raw_bits(length: int, value: int) -> bytes:
    """Pack ``length`` bits (``value``, first bit most significant) as OSDP carries them."""
    size = (length + 7) // 8
    return (value << (size * 8 - length)).to_bytes(size, "big")


def feedback(verdict: Verdict, unlock_ms: int) -> list[dict[str, object]]:
    """libosdp command dicts (CP ``submit_command``) that show a decision at the reader."""
    if verdict is Verdict.PENDING:
        return [_led(AMBER, 10_000)]
    if verdict is Verdict.ADMIT:
        ms = max(unlock_ms, _TENTHS)
        return [
            _led(GREEN, ms),
            _buzzer(beeps=1),
            {
                "command": CMD_OUTPUT,
                "output_no": LOCK_OUTPUT,
                "control_code": 2,  # permanent off -> on for the timer, then off
                "timer_count": ms // _TENTHS,
            },
        ]
    return [_led(RED, 2000), _buzzer(beeps=3)]


def _led(colour: int, ms: int) -> dict[str, object]:
    return {
        "command": CMD_LED,
        "reader": 0,
        "led_number": 0,
        "control_code": 2,  # temporary state: set it and start the timer
        "on_count": 10,
        "off_count": 0,
        "on_color": colour,
        "off_color": BLACK,
        "timer_count": min(max(ms // _TENTHS, 1), 0xFFFF),
        "temporary": True,
    }


def _buzzer(*, beeps: int) -> dict[str, object]:
    return {
        "command": CMD_BUZZER,
        "reader": 0,
        "control_code": 2,  # default tone
        "on_count": 2,
        "off_count": 1,
        "rep_count": beeps,
    }
