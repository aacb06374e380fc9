"""The codec of each serial reader protocol: one entry per `SerialProtocol`.

A stream protocol (RDM6300, a Wiegand converter) is a stateless `decode` over the
line's bytes (devices/codecs/serial_frames.py). OSDP's frames are the libosdp
panel's business (devices/transports/osdp_panel.py): its entry has no `decode`,
and its card reports and feedback commands go through devices/codecs/osdp.py.
Adding a stream protocol: a codec module with `decode`, a `SerialProtocol` member
and its line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.codecs import rdm6300, wiegand
from devices.codecs.serial_frames import Decoder
from gateway.domain.roster import SerialProtocol


@dataclass(frozen=True, slots=True)
class SerialCodec:
    protocol: SerialProtocol
    default_baud: int
    decode: Decoder | None  # None: a panel frames the line (OSDP)


SERIAL_CODECS: dict[SerialProtocol, SerialCodec] = {
    codec.protocol: codec
    for codec in (
        SerialCodec(SerialProtocol.RDM6300, 9600, rdm6300.decode),
        SerialCodec(SerialProtocol.WIEGAND, 9600, wiegand.decode),
        SerialCodec(SerialProtocol.OSDP, 9600, None),
    )
}


def serial_codec(protocol: str | None) -> SerialCodec | None:
    """The codec of a device's `protocol`, None when it names none."""
    if protocol is None:
        return None
    try:
        return SERIAL_CODECS[SerialProtocol(protocol)]
    except ValueError:
        return None
