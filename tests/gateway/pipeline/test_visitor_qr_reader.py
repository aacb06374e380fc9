"""The gateway's QR reader: a valid token becomes its card, anything else an unmatched
card, counted by cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.visitor_qr import QrClaims, encode_token, unmatched_card_uid
from gateway.domain.events import CardEvent, Direction, QrEvent
from gateway.metrics import Counters
from gateway.pipeline.visitor_qr import EXPIRY_GRACE, QrReader

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes_raw()
TS = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
TOKEN = encode_token(QrClaims(5, "00112233445566778899", TS), PUBLIC, KEY.sign)


def event(token: str, direction: Direction = Direction.OUT) -> QrEvent:
    return QrEvent("term-1", "e-1", TS, token, direction)


def at(moment: datetime):
    return lambda: moment


def test_valid_token_is_its_card_event():
    counters = Counters()
    card = QrReader(PUBLIC, counters, at(TS)).card_event(event(TOKEN))
    assert card == CardEvent("term-1", "e-1", TS, "00112233445566778899", Direction.OUT)
    assert not counters.qr_invalid


def test_invalid_tokens_are_unmatched_cards_counted_by_cause(caplog):
    counters = Counters()
    reader = QrReader(PUBLIC, counters, at(TS))
    forged = TOKEN.rsplit(".", 1)[0] + "." + "A" * 86
    for bad in (forged, "hello"):
        assert reader.card_event(event(bad)).card_uid == unmatched_card_uid(bad)
    assert counters.qr_invalid == {"bad_signature": 1, "malformed": 1}
    assert "invalid visitor QR" in caplog.text and "term-1" in caplog.text
    keyless = Counters()
    assert QrReader(None, keyless).card_event(event(TOKEN)).card_uid != "00112233445566778899"
    assert keyless.qr_invalid == {"no_key": 1}
    assert counters.snapshot()["qr_invalid"] == {"bad_signature": 1, "malformed": 1}


def test_expired_token_enters_as_nobody_but_still_leaves(caplog):
    counters = Counters()
    late = TS + EXPIRY_GRACE + timedelta(seconds=1)
    reader = QrReader(PUBLIC, counters, at(late))
    entering = reader.card_event(event(TOKEN, Direction.IN))
    assert entering.card_uid == unmatched_card_uid(TOKEN)
    leaving = reader.card_event(event(TOKEN, Direction.OUT))
    assert leaving.card_uid == "00112233445566778899"  # leaving is free, logged as the visitor
    assert counters.qr_invalid == {"expired": 2}
    assert "expired visitor QR" in caplog.text


def test_token_within_the_grace_is_still_its_card():
    counters = Counters()
    reader = QrReader(PUBLIC, counters, at(TS + EXPIRY_GRACE - timedelta(seconds=1)))
    assert reader.card_event(event(TOKEN, Direction.IN)).card_uid == "00112233445566778899"
    assert not counters.qr_invalid
