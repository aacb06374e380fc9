"""The terminal's check of signed commands: forged, altered, replayed, stale, unsigned."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.command_batch import sign_batch
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
    fields = {k: v for k, v in body.items() if k not in ("path", "sig")}
    head = json.dumps(fields, separators=(",", ":"))
    relabelled = head[:-1].encode() + b',"path":[],"sig":"' + body["sig"].encode() + b'"}'
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
    assert refusal(verifier, b'{"type":"decision","sig":"short"}') is Refusal.UNSIGNED
    short = b'{"type":"decision","path":[],"sig":"short"}'
    assert refusal(verifier, short) is Refusal.BAD_SIGNATURE


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


# ---- batches: one signature, one audit path per command ------------------------------


def batch(size: int = 5) -> list[tuple[str, bytes]]:
    """`size` decisions for doors A and B in turn, signed at once."""
    commands = [(DOOR_A if i % 2 == 0 else DOOR_B, admit(f"e-{i}").to_wire()) for i in range(size)]
    payloads = sign_batch(commands, Ed25519CommandSigner(GATEWAY_KEY))
    return [(device, payload) for (device, _), payload in zip(commands, payloads, strict=True)]


def with_path(payload: bytes, path: list[str]) -> bytes:
    head, _, rest = payload.rpartition(b',"path":[')
    sig = rest[rest.index(b',"sig":"') :]
    return head + b',"path":[' + b",".join(f'"{h}"'.encode() for h in path) + b"]" + sig


def path_of(payload: bytes) -> list[str]:
    return json.loads(payload)["path"]


def test_every_command_of_a_batch_is_accepted_at_its_door_once() -> None:
    verifiers = {DOOR_A: CommandVerifier(DOOR_A, PUBLIC), DOOR_B: CommandVerifier(DOOR_B, PUBLIC)}
    commands = batch(5)
    assert len({json.loads(p)["sig"] for _, p in commands}) == 1
    for device, payload in commands:
        assert verifiers[device].check(payload)["decision"] == "admit"
    # Replaying one command of the batch is refused; its siblings were accepted on their own.
    device, payload = commands[2]
    assert refusal(verifiers[device], payload) is Refusal.REPLAYED


def test_a_replayed_command_is_refused_while_an_unseen_sibling_still_passes() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    (_, first), _, (_, third), *_ = batch(5)
    verifier.check(first)
    assert refusal(verifier, first) is Refusal.REPLAYED
    assert verifier.check(third)["event_id"] == "e-2"  # same signature, another leaf


def test_a_command_of_the_batch_for_another_door_is_refused() -> None:
    (_, for_a), (_, for_b), *_ = batch(3)
    assert refusal(CommandVerifier(DOOR_B, PUBLIC), for_a) is Refusal.BAD_SIGNATURE
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), for_b) is Refusal.BAD_SIGNATURE


def test_a_forged_path_hash_is_refused() -> None:
    (_, payload), *_ = batch(5)
    path = path_of(payload)
    forged = path[:]
    forged[1] = forged[0]
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), with_path(payload, forged)) is (
        Refusal.BAD_SIGNATURE
    )
    reordered = list(reversed(path))
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), with_path(payload, reordered)) is (
        Refusal.BAD_SIGNATURE
    )


def test_a_path_that_does_not_fit_the_tree_is_a_bad_path() -> None:
    (_, payload), *_ = batch(5)
    path = path_of(payload)
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    assert refusal(verifier, with_path(payload, path[:-1])) is Refusal.BAD_PATH
    assert refusal(verifier, with_path(payload, [*path, path[0]])) is Refusal.BAD_PATH
    assert refusal(verifier, with_path(payload, [])) is Refusal.BAD_PATH
    assert verifier.check(payload)["event_id"] == "e-0"


def test_a_forged_leaf_under_a_genuine_path_and_signature_is_refused() -> None:
    # The attacker keeps the batch's signature and a genuine path, and changes the command.
    _, _, (_, payload), *_ = batch(5)
    for old, new in [
        (b'"event_id":"e-2"', b'"event_id":"e-9"'),
        (b'"leaf_index":2', b'"leaf_index":0'),
        (b'"tree_size":5', b'"tree_size":6'),
        (b'"batch":', b'"batch":1'),
        (b'"ts":"2026', b'"ts":"2027'),
    ]:
        forged = payload.replace(old, new)
        assert forged != payload
        with pytest.raises(CommandRefused):
            CommandVerifier(DOOR_A, PUBLIC).check(forged)
    (_, first), *_ = batch(5)
    # Another command's bytes under this one's path and signature.
    swapped = with_path(first, path_of(payload))
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), swapped) is Refusal.BAD_SIGNATURE


def test_a_root_signed_by_another_key_is_refused() -> None:
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    other = Ed25519PrivateKey.generate()
    forged = sign_batch([(DOOR_A, admit().to_wire())] * 3, Ed25519CommandSigner(other))[0]
    assert refusal(verifier, forged) is Refusal.WRONG_KEY
    relabelled = forged.replace(json.loads(forged)["kid"].encode(), verifier.kid.encode())
    assert refusal(verifier, relabelled) is Refusal.BAD_SIGNATURE


def test_an_unknown_scheme_is_refused() -> None:
    payload = signed()
    old = payload.replace(b'"alg":"ed25519-merkle-v1",', b"")
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), old) is Refusal.BAD_SIGNATURE
    v2 = payload.replace(b"ed25519-merkle-v1", b"ed25519-merkle-v2")
    assert refusal(CommandVerifier(DOOR_A, PUBLIC), v2) is Refusal.BAD_SIGNATURE


def test_an_absurd_tree_size_or_index_is_a_bad_path() -> None:
    payload = signed()
    verifier = CommandVerifier(DOOR_A, PUBLIC)
    huge = payload.replace(b'"tree_size":1', b'"tree_size":99999999')
    assert refusal(verifier, huge) is Refusal.BAD_PATH
    beyond = payload.replace(b'"leaf_index":0', b'"leaf_index":1')
    assert refusal(verifier, beyond) is Refusal.BAD_PATH
    negative = payload.replace(b'"leaf_index":0', b'"leaf_index":-1')
    assert refusal(verifier, negative) is Refusal.BAD_PATH
