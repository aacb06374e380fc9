"""Signed commands pinned by byte vectors: the gateway's signer and the simulator's verifier
(written apart, see firmware_sim/command_check.py) must agree on these exact bytes."""

from __future__ import annotations

import base64
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.contract_json import encode_decision
from firmware_sim.command_check import CommandVerifier
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
SIGNED = (
    b'{"type":"decision","event_id":"e-9","decision":"admit","reason":"ok",'
    b'"message":"Welcome, Li Hua","unlock_ms":3000,"late":false,'
    b'"seq":1796288400000000,"ts":"2026-12-03T09:00:00.000Z","kid":"56475aa75463474c",'
    b'"sig":"Paitf62VUCzqicQggOox20bG4xvps4jXuewoCShCaej-NEL9iXVbla6Odv14K92nFRaTeOvbxl5NSPr1ArvuBA"}'
)
AT = datetime.fromisoformat("2026-12-03T09:00:05Z").timestamp()


class FixedStamp(Ed25519CommandSigner):
    def stamp(self) -> tuple[int, str]:
        return 1796288400000000, "2026-12-03T09:00:00.000Z"


def admit() -> Decision:
    return Decision("e-9", Verdict.ADMIT, Reason.OK, "Welcome, Li Hua", 3000)


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


def test_the_signature_covers_device_id_newline_and_the_bytes_before_sig() -> None:
    body, _, sig = SIGNED.rpartition(b',"sig":"')
    signature = base64.urlsafe_b64decode(sig[:-2] + b"==")
    KEY.public_key().verify(signature, DEVICE.encode() + b"\n" + body + b"}")


def test_the_terminal_accepts_these_exact_bytes() -> None:
    verifier = CommandVerifier(DEVICE, base64.urlsafe_b64decode(PUBLIC_KEY + "="))
    fields = verifier.check(SIGNED, now=AT)
    assert fields["decision"] == "admit" and fields["unlock_ms"] == 3000
    assert fields["seq"] == 1796288400000000 and "sig" not in fields


def test_unsigned_encoding_is_unchanged() -> None:
    assert encode_decision(admit()) == SIGNED.partition(b',"seq"')[0] + b"}"


def test_a_signed_command_needs_its_device_id() -> None:
    with pytest.raises(ValueError, match="device id"):
        encode_decision(admit(), None, FixedStamp(KEY))


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
