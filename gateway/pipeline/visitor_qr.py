"""Scanned visitor QR tokens into card events (docs/protocol.md, "Visitor QR tokens").

A valid token becomes a card event of the pass's visitor card, decided exactly like a
swipe of it. A forged, altered, foreign-signed or garbled token becomes a card event of
an id that matches nobody: denied `unknown_card`, raising `outsider` like any unknown
card; it is counted (`qr_invalid` by cause) and logged. Verification is one Ed25519 check
in memory: nothing slow on the door path.
"""

from __future__ import annotations

import logging

from devices.codecs.visitor_qr import QrInvalid, QrTokenError, decode_token, unmatched_card_uid
from gateway.domain.events import CardEvent, QrEvent
from gateway.metrics import Counters

_LOGGER = logging.getLogger(__name__)
NO_KEY = "no_key"  # the gateway signs nothing (CAMPUSGATE_SIGN_COMMANDS off): nothing verifies


class QrReader:
    """Turns `qr` events into card events with the gateway's public signing key."""

    def __init__(self, public_raw: bytes | None, counters: Counters) -> None:
        self._public_raw = public_raw
        self._counters = counters

    def card_event(self, event: QrEvent) -> CardEvent:
        uid = self._verified_uid(event)
        return CardEvent(event.device_id, event.event_id, event.ts, uid, event.direction)

    def _verified_uid(self, event: QrEvent) -> str:
        if self._public_raw is None:
            return self._refuse(event, NO_KEY, "the gateway has no signing key")
        try:
            return decode_token(event.token, self._public_raw).card_uid
        except QrTokenError as exc:
            return self._refuse(event, exc.cause, str(exc))

    def _refuse(self, event: QrEvent, cause: QrInvalid | str, why: str) -> str:
        self._counters.qr_invalid[str(cause)] += 1
        uid = unmatched_card_uid(event.token)
        _LOGGER.warning(
            "device %s: invalid visitor QR in event %s (%s: %s); decided as card %s",
            event.device_id,
            event.event_id,
            cause,
            why,
            uid,
        )
        return uid
