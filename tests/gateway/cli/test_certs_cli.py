"""`campusgate certs`: a CA, the broker's certificate, device certificates."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.cli import main


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["certs", *args])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_then_a_device_certificate(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    result = _run("init", "--out", str(out), "--host", "broker.example", "--host", "10.0.0.5")
    assert result.exit_code == 0, result.output
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    ca, server = _cert(out / "ca.crt"), _cert(out / "server.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.issuer == ca.subject
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]

    device = _run(
        "device", "term-7", "--ca", str(out), "--out", str(tmp_path / "dev"), "--days", "30"
    )
    assert device.exit_code == 0, device.output
    cert = _cert(tmp_path / "dev" / "term-7.crt")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "term-7"
    assert cert.issuer == ca.subject
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30
    assert stat.S_IMODE((tmp_path / "dev" / "term-7.key").stat().st_mode) == 0o600


def test_bad_input_gets_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    assert _run("init", "--out", str(out), "--host", "b").exit_code == 0
    again = _run("init", "--out", str(out), "--host", "b")
    assert again.exit_code != 0 and "--force" in again.stderr
    before = (out / "ca.crt").read_bytes()
    assert _run("init", "--out", str(out), "--host", "b", "--force").exit_code == 0
    assert (out / "ca.crt").read_bytes() != before
    for args, message in [
        (["device", "a/b", "--ca", str(out), "--out", str(tmp_path)], "cannot be a certificate"),
        (["device", "#", "--ca", str(out), "--out", str(tmp_path)], "cannot be a certificate"),
        (["device", "t1", "--ca", str(tmp_path / "none"), "--out", str(tmp_path)], "certs init"),
        (["device", "t1", "--ca", str(out), "--out", str(tmp_path), "--days", "0"], "--days"),
        (["init", "--out", str(tmp_path / "x"), "--host", "b", "--days", "0"], "--days"),
    ]:
        result = _run(*args)
        assert result.exit_code != 0 and message in result.stderr, (args, result.output)
