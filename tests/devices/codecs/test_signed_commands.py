"""Signed commands (ed25519-merkle-v1) pinned by byte vectors: the gateway's signer and the simulator's verifier
(written apart, see firmware_sim/command_check.py) must agree on these exact bytes."""

from __future__ import annotations

import base64
import hashlib
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.command_batch import audit_path, sign_batch, tree_levels
from devices.codecs.contract_json import encode_decision
from firmware_sim.command_check import CommandVerifier, root_from_path
from gateway.domain.decisions import Decision, Reason, Verdict
from gateway.pipeline.signing import (
    Ed25519CommandSigner,
    PublicKeyInfo,
    SigningKeyError,
    load_or_create_key,
    rfc3339_ms,
    rotate_key,
)

# A fixed private key (the bytes 0..31) and a fixed stamp give fixed bytes: Ed25519 is
# deterministic (RFC 8032), so any change to what is signed or how shows up here.
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC_KEY = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
KID = "56475aa75463474c"
DEVICE = "term-d10-1"
HEAD = (
    b'{"type":"decision","event_id":"e-9","decision":"admit","reason":"ok",'
    b'"message":"Welcome, Li Hua","unlock_ms":3000,"late":false,'
)
STAMP = b'"alg":"ed25519-merkle-v1","seq":1796288400000000,"ts":"2026-12-03T09:00:00.000Z",'
# A batch of one: an empty path, the signature over the root (= the leaf) message.
SIGNED = (
    HEAD + STAMP + b'"kid":"56475aa75463474c","batch":1796288400000000,"leaf_index":0,'
    b'"tree_size":1,"path":[],'
    b'"sig":"JhfQIH4j9EfUGPW0MecuCLP13EBxD9e7W4jR2pG-sLHxjUb6mbVdsGO82M55qvzPQXvFxCxsMP52U9NmrxDVDA"}'
)
BATCH_SIG = b'"sig":"HyEYIEMAgMojdNtlineFXQVZeUyfYgMHQEhNTfOQQ04T_F7zHUrCJPaf7n0mY47WOYSglzacts3-nesalhA-Dg"}'
# A batch of three for two doors: one signature, three audit paths (RFC 6962: the third
# leaf's path is the root of the first two).
BATCH = [
    (
        DEVICE,
        HEAD + STAMP + b'"kid":"56475aa75463474c","batch":1796288400000000,"leaf_index":0,'
        b'"tree_size":3,"path":["lz6yWUwQ3ty6tnITsGhXn7fQ7b24rMjsWwp4juQWoRc",'
        b'"38LWVPCl_xEx9ymMurJrgsb802sMrmyMCOjaAJmuuUs"],' + BATCH_SIG,
    ),
    (
        "term-d10-2",
        b'{"type":"decision","event_id":"e-10","decision":"deny","reason":"unknown_card",'
        b'"message":"Unknown card","unlock_ms":0,"late":false,"alg":"ed25519-merkle-v1",'
        b'"seq":1796288400000001,"ts":"2026-12-03T09:00:00.000Z","kid":"56475aa75463474c",'
        b'"batch":1796288400000000,"leaf_index":1,"tree_size":3,'
        b'"path":["c9r6re162PZEmTXKYJu0a6ELpKyl4cAMzYV2Uc4gckM",'
        b'"38LWVPCl_xEx9ymMurJrgsb802sMrmyMCOjaAJmuuUs"],' + BATCH_SIG,
    ),
    (
        DEVICE,
        b'{"type":"decision","event_id":"e-11","decision":"admit","reason":"ok",'
        b'"message":"Welcome, Wang Fang","unlock_ms":3000,"late":false,"alg":"ed25519-merkle-v1",'
        b'"seq":1796288400000002,"ts":"2026-12-03T09:00:00.000Z","kid":"56475aa75463474c",'
        b'"batch":1796288400000000,"leaf_index":2,"tree_size":3,'
        b'"path":["xAL9O9Df4Z8Jnr1mx514lO3GV95M_0p88Iidoeclu5U"],' + BATCH_SIG,
    ),
]
AT = datetime.fromisoformat("2026-12-03T09:00:05Z").timestamp()


class FixedStamp(Ed25519CommandSigner):
    """Stamps 09:00:00.000Z, with seq counting up from 1796288400000000."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        super().__init__(key)
        self.stamps = 0

    def stamp(self) -> tuple[int, str]:
        self.stamps += 1
        return 1796288400000000 + self.stamps - 1, "2026-12-03T09:00:00.000Z"


def admit() -> Decision:
    return Decision("e-9", Verdict.ADMIT, Reason.OK, "Welcome, Li Hua", 3000)


def batch_decisions() -> list[tuple[str, dict[str, object]]]:
    return [
        (DEVICE, admit().to_wire()),
        (
            "term-d10-2",
            Decision("e-10", Verdict.DENY, Reason.UNKNOWN_CARD, "Unknown card", 0).to_wire(),
        ),
        (DEVICE, Decision("e-11", Verdict.ADMIT, Reason.OK, "Welcome, Wang Fang", 3000).to_wire()),
    ]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def signed_part(payload: bytes) -> bytes:
    return payload[: payload.rindex(b',"path":[')] + b"}"


def root_message(size: int, root: bytes) -> bytes:
    return (
        f"ed25519-merkle-v1\n{KID}\n1796288400000000\n2026-12-03T09:00:00.000Z\n{size}\n".encode()
        + root
    )


def signature_of(payload: bytes) -> bytes:
    return base64.urlsafe_b64decode(payload[payload.rindex(b'"sig":"') + 7 : -2] + b"==")


def test_rfc8032_test_1_signs_as_the_specification_says() -> None:
    # RFC 8032 section 7.1, TEST 1 (empty message): the library is plain Ed25519.
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    expected = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert Ed25519PrivateKey.from_private_bytes(secret).sign(b"") == expected


def test_the_gateway_signs_these_exact_bytes() -> None:
    info = PublicKeyInfo.of(KEY)
    assert (info.public_key, info.kid) == (PUBLIC_KEY, KID)
    assert encode_decision(admit(), DEVICE, FixedStamp(KEY)) == SIGNED


def test_the_gateway_signs_a_batch_of_three_as_these_exact_bytes() -> None:
    assert sign_batch(batch_decisions(), FixedStamp(KEY)) == [p for _, p in BATCH]


def test_a_batch_of_one_signs_its_leaf_as_the_root() -> None:
    leaf = sha256(b"\x00" + DEVICE.encode() + b"\n" + signed_part(SIGNED))
    KEY.public_key().verify(signature_of(SIGNED), root_message(1, leaf))


def test_the_batch_signature_covers_the_rfc6962_root_of_the_three_leaves() -> None:
    # Computed here by hand from the protocol text: leaves 0x00-prefixed, nodes 0x01-prefixed,
    # three leaves split at two (the largest power of two below three).
    leaves = [sha256(b"\x00" + d.encode() + b"\n" + signed_part(p)) for d, p in BATCH]
    root = sha256(b"\x01" + sha256(b"\x01" + leaves[0] + leaves[1]) + leaves[2])
    KEY.public_key().verify(signature_of(BATCH[0][1]), root_message(3, root))
    assert {signature_of(p) for _, p in BATCH} == {signature_of(BATCH[0][1])}


@pytest.mark.parametrize("size", range(1, 18))
def test_the_tree_is_rfc6962s_recursive_split(size: int) -> None:
    leaves = [sha256(bytes([i])) for i in range(size)]

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return sha256(b"\x01" + mth(items[:k]) + mth(items[k:]))

    def path(m: int, items: list[bytes]) -> list[bytes]:
        if len(items) == 1:
            return []
        k = 1 << ((len(items) - 1).bit_length() - 1)
        if m < k:
            return [*path(m, items[:k]), mth(items[k:])]
        return [*path(m - k, items[k:]), mth(items[:k])]

    levels = tree_levels(leaves)
    assert levels[-1] == [mth(leaves)]
    for m in range(size):
        assert audit_path(levels, m) == path(m, leaves)
        assert root_from_path(leaves[m], m, size, audit_path(levels, m)) == mth(leaves)


def test_the_terminal_accepts_these_exact_bytes() -> None:
    verifier = CommandVerifier(DEVICE, base64.urlsafe_b64decode(PUBLIC_KEY + "="))
    fields = verifier.check(SIGNED, now=AT)
    assert fields["decision"] == "admit" and fields["unlock_ms"] == 3000
    assert fields["seq"] == 1796288400000000 and "sig" not in fields and "path" not in fields


def test_each_door_accepts_its_commands_of_the_batch_of_three() -> None:
    public = base64.urlsafe_b64decode(PUBLIC_KEY + "=")
    verifiers = {
        DEVICE: CommandVerifier(DEVICE, public),
        "term-d10-2": CommandVerifier("term-d10-2", public),
    }
    assert [verifiers[d].check(p, now=AT)["event_id"] for d, p in BATCH] == ["e-9", "e-10", "e-11"]


def test_unsigned_encoding_is_unchanged() -> None:
    assert encode_decision(admit()) == HEAD[:-1] + b"}"


def test_a_signed_command_needs_its_device_id() -> None:
    with pytest.raises(ValueError, match="device id"):
        encode_decision(admit(), None, FixedStamp(KEY))


def test_an_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        sign_batch([], FixedStamp(KEY))


def test_seq_increases_even_when_the_clock_does_not() -> None:
    signer = Ed25519CommandSigner(KEY)
    seqs = [signer.stamp()[0] for _ in range(1000)]
    assert seqs == sorted(set(seqs))
    ts = signer.stamp()[1]
    assert ts.endswith("Z") and datetime.fromisoformat(ts).tzinfo is not None


@pytest.mark.parametrize("epoch_ms", [0, 1796288400000, 1796288400999, 1796288459001, 951782400123])
def test_ts_is_rfc3339_utc_milliseconds(epoch_ms: int) -> None:
    expected = datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")
    assert rfc3339_ms(epoch_ms) == expected.replace("+00:00", "Z")


def test_ts_follows_the_clock_across_milliseconds() -> None:
    # `ts` is reused within one millisecond: it must still be the signing time's.
    signer = Ed25519CommandSigner(KEY)
    for _ in range(3):
        before = datetime.now(UTC).replace(microsecond=0)
        _, ts = signer.stamp()
        after = datetime.now(UTC)
        stamped = datetime.fromisoformat(ts)
        assert before <= stamped <= after
        time.sleep(0.002)
        assert signer.stamp()[1] != ts


def test_the_key_file_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "command-signing.pem"
    key, made = load_or_create_key(path)
    assert made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again, made_again = load_or_create_key(path)
    assert not made_again
    assert PublicKeyInfo.of(again) == PublicKeyInfo.of(key)
    assert [p.name for p in path.parent.iterdir()] == ["command-signing.pem"]


def test_rotation_keeps_the_old_key_beside_the_new(tmp_path: Path) -> None:
    path = tmp_path / "command-signing.pem"
    first, _ = load_or_create_key(path)
    old, second = rotate_key(path, now=datetime.fromisoformat("2026-12-03T09:00:00Z"))
    assert old == tmp_path / "command-signing.pem.20261203T090000Z.old"
    assert PublicKeyInfo.of(load_or_create_key(old)[0]) == PublicKeyInfo.of(first)
    assert PublicKeyInfo.of(load_or_create_key(path)[0]) == PublicKeyInfo.of(second)
    assert PublicKeyInfo.of(second).kid != PublicKeyInfo.of(first).kid


def test_a_broken_key_file_is_a_clear_error_not_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "command-signing.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        load_or_create_key(path)
    assert path.read_bytes() == b"not a key"
