"""The terminal's check of signed commands: forged, altered, replayed, stale, unsigned."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.contract_json import encode_decision
from firmware_sim.command_check import (
    CommandRefused,
    CommandVerifier,
    Refusal,
    public_key_from_text,
)
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.pipeline.signing import Ed25519CommandSigner

DOOR_A, DOOR_B = "term-a", "term-b"
GATEWAY_KEY = Ed25519PrivateKey.generate()
PUBLIC = GATEWAY_KEY.public_key().public_bytes_raw()


def admit(event_id: str = "e-1") -> Decision:
    return Decision(event_id, Verdict.ADMIT, Reason.OK, "Welcome", 3000)


def signed(device: str = DOOR_A, key: Ed25519PrivateKey = GATEWAY_KEY, **kw: object) -> bytes:
    return encode_decision(admit(**kw), device, Ed25519CommandSigner(key))  # type: ignore[arg-type]


def refusal(verifier: CommandVerifier, payload: bytes, now: float | None = None) -> Refusal:
    with pytest.raises(CommandRefused) as refused:
        verifier.check(payload, now)
    return refused.value.cause


def test_a_genuine_command_is_accepted_once() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    command = signed()
    assert verifier.check(command)["event_id"] == "e-1"
    assert refusal(verifier, command) is Refusal.REPLAYED


def test_two_commands_with_equal_fields_both_pass() -> None:
    # A resent event is answered again with the same decision: seq keeps them apart.
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    signer = Ed25519CommandSigner(GATEWAY_KEY)
    first, second = (encode_decision(admit(), DOOR_A, signer) for _ in range(2))
    assert first != second
    verifier.check(first)
    verifier.check(second)


def test_an_admit_recorded_for_one_door_is_refused_at_another() -> None:
    assert refusal(CommandVerifier(DOOR_B, PUBLIC), signed(DOOR_A)) is Refusal.BAD_SIGNATURE


def test_forged_with_another_key_under_the_pinned_kid() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    forged = signed(key=Ed25519PrivateKey.generate())
    assert refusal(verifier, forged) is Refusal.WRONG_KEY
    body = json.loads(forged)
    body["kid"] = verifier.kid  # the attacker copies the pinned key's id
    head = json.dumps({k: v for k, v in body.items() if k != "sig"}, separators=(",", ":"))
    relabelled = head[:-1].encode() + b',"sig":"' + body["sig"].encode() + b'"}'
    assert refusal(verifier, relabelled) is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"decision":"admit"', b'"decision":"deny" '),
        (b'"unlock_ms":3000', b'"unlock_ms":9000'),
        (b'"event_id":"e-1"', b'"event_id":"e-2"'),
        (b'"late":false', b'"late":true '),
    ],
)
def test_one_altered_field_breaks_the_signature(old: bytes, new: bytes) -> None:
    command = signed()
    assert old in command
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), command.replace(old, new)) is (
        Refusal.BAD_SIGNATURE
    )


def test_every_single_flipped_byte_is_refused() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    command = signed()
    for i in range(len(command)):
        altered = bytearray(command)
        altered[i] ^= 0x01
        with pytest.raises(CommandRefused):
            verifier.check(bytes(altered))
    assert verifier.check(command)["decision"] == "admit"


def test_a_sig_spelled_another_way_is_refused() -> None:
    # The 86th base64url character has 2 unused bits; a decoder that ignores them would
    # take a second spelling of one signature.
    command = signed()
    last = command[-3:-2]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = alphabet[alphabet.index(last) ^ 0x01 : (alphabet.index(last) ^ 0x01) + 1]
    respelled = command[:-3] + other + b'"}'
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), respelled) is Refusal.BAD_SIGNATURE


def test_fields_after_the_signature_are_not_taken() -> None:
    # Anything the signature does not cover is refused, never merged into the command.
    command = signed()
    smuggled = command[:-1] + b',"unlock_ms":60000}'
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), smuggled) is Refusal.UNSIGNED


def test_unsigned_and_garbage_are_refused() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    assert refusal(verifier, encode_decision(admit())) is Refusal.UNSIGNED
    assert refusal(verifier, b"\xff garbage") is Refusal.UNSIGNED
    assert refusal(verifier, b'{"type":"decision","sig":"short"}') is Refusal.BAD_SIGNATURE


def test_a_command_outside_the_window_is_stale() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC, window_s=30)
    command = signed()
    assert refusal(verifier, command, now=time.time() + 31) is Refusal.STALE
    assert refusal(verifier, command, now=time.time() - 31) is Refusal.STALE
    assert verifier.check(command, now=time.time() + 29)["decision"] == "admit"


def test_the_public_key_reads_as_base64url_or_base64() -> None:
    import base64

    assert public_key_from_text(base64.urlsafe_b64encode(PUBLIC).decode().rstrip("=")) == PUBLIC
    assert public_key_from_text(base64.b64encode(PUBLIC).decode()) == PUBLIC
    with pytest.raises(ValueError, match="32 bytes"):
        public_key_from_text("AAAA")
