"""Scanned visitor QR tokens into card events (docs/protocol.md, "Visitor QR tokens").

A valid token becomes a card event of the pass's visitor card, decided exactly like a
swipe of it. A forged, altered, foreign-signed or garbled token becomes a card event of
an id that matches nobody: denied `unknown_card`, raising `outsider` like any unknown
card; it is counted (`qr_invalid` by cause) and logged. Verification is one Ed25519 check
in memory: nothing slow on the door path.

A token past its end (by the gateway's clock, with EXPIRY_GRACE for clock skew) is worth
nothing for entering: an `in` scan maps to the unmatched card like a bad token. Leaving
stays free (contract: "Leaving is free"): an `out` scan of an expired token still maps to
the pass's card, so a visitor who overstays is let out and logged leaving. Both are
counted `qr_invalid{cause="expired"}` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from devices.codecs.visitor_qr import QrInvalid, QrTokenError, decode_token, unmatched_card_uid
from gateway.domain.events import CardEvent, Direction, QrEvent
from gateway.metrics import Counters

_LOGGER = logging.getLogger(__name__)
NO_KEY = "no_key"  # the gateway signs nothing (CAMPUSGATE_SIGN_COMMANDS off): nothing verifies
EXPIRED = "expired"  # the token's pass has ended
# Terminals and gateways keep NTP time; two minutes covers their drift, not an overstay.
EXPIRY_GRACE = timedelta(minutes=2)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class QrReader:
    """Turns `qr` events into card events with the gateway's public signing key."""

    def __init__(
        self,
        public_raw: bytes | None,
        counters: Counters,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._public_raw = public_raw
        self._counters = counters
        self._clock = clock

    def card_event(self, event: QrEvent) -> CardEvent:
        uid = self._verified_uid(event)
        return CardEvent(event.device_id, event.event_id, event.ts, uid, event.direction)

    def _verified_uid(self, event: QrEvent) -> str:
        if self._public_raw is None:
            return self._refuse(event, NO_KEY, "the gateway has no signing key")
        try:
            claims = decode_token(event.token, self._public_raw)
        except QrTokenError as exc:
            return self._refuse(event, exc.cause, str(exc))
        if self._clock() < claims.ends_at + EXPIRY_GRACE:
            return claims.card_uid
        why = f"pass {claims.pass_id} ended {claims.ends_at.isoformat()}"
        if event.direction is Direction.OUT:  # leaving is free: the visitor is let out, logged
            self._counters.qr_invalid[EXPIRED] += 1
            _LOGGER.warning(
                "device %s: expired visitor QR in event %s (%s); leaving as card %s",
                event.device_id,
                event.event_id,
                why,
                claims.card_uid,
            )
            return claims.card_uid
        return self._refuse(event, EXPIRED, why)

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
