"""A private CA for the broker: its server certificate and device client certificates.

Made with the `cryptography` package. Keys are ECDSA P-256 (small, fast handshakes on
door terminals, supported by Mosquitto's OpenSSL). Private keys are written 0600.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
CA_DAYS, SERVER_DAYS, DEVICE_DAYS = 3650, 825, 825
# A client certificate's CN becomes the MQTT username (`use_identity_as_username`), so it
# must be a name the ACL patterns can hold: no '/', '+', '#'.
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CertificateError(Exception):
    """A certificate cannot be made; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Issued:
    cert: Path
    key: Path
    not_after: datetime


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: never readable by others, not even for a moment.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CampusGate"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(days: int, now: datetime | None) -> tuple[datetime, datetime]:
    if days < 1:
        raise CertificateError(f"--days must be at least 1, not {days}")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # clock skew between hosts
    return start, start + timedelta(days=days)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def init_ca(
    out: Path,
    hosts: list[str],
    *,
    days: int = SERVER_DAYS,
    ca_days: int = CA_DAYS,
    force: bool = False,
    now: datetime | None = None,
) -> tuple[Issued, Issued]:
    """A new CA (`ca.crt`, `ca.key`) and the broker's certificate for `hosts` in `out`."""
    if not hosts:
        raise CertificateError("name the broker's host names or addresses with --host")
    _validity(days, now)  # refuse bad input before anything is written
    out.mkdir(parents=True, exist_ok=True)
    if (out / CA_KEY).exists() and not force:
        raise CertificateError(
            f"{out / CA_KEY} exists: a new CA would invalidate every certificate it signed;"
            " pass --force to replace it anyway, or use another --out"
        )
    start, end = _validity(ca_days, now)
    ca_key = _new_key()
    ca_name = _name("CampusGate broker CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out / CA_KEY, ca_key)
    _write_cert(out / CA_CERT, ca_cert)
    ca = Issued(out / CA_CERT, out / CA_KEY, end)
    server = _issue(
        ca_cert,
        ca_key,
        hosts[0],
        out / SERVER_CERT,
        out / SERVER_KEY,
        days=days,
        now=now,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[_san(h) for h in hosts],
    )
    return ca, server


def issue_device(
    device_id: str,
    ca_dir: Path,
    out: Path,
    *,
    days: int = DEVICE_DAYS,
    now: datetime | None = None,
) -> Issued:
    """A client certificate with CN = `device_id`, signed by the CA in `ca_dir`."""
    if not _DEVICE_ID.match(device_id):
        raise CertificateError(
            f"device id {device_id!r} cannot be a certificate identity: use letters, digits,"
            " '.', '_' and '-' only"
        )
    ca_cert, ca_key = load_ca(ca_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _issue(
        ca_cert,
        ca_key,
        device_id,
        out / f"{device_id}.crt",
        out / f"{device_id}.key",
        days=days,
        now=now,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        sans=[],
    )


def load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = ca_dir / CA_CERT, ca_dir / CA_KEY
    if not cert_path.is_file() or not key_path.is_file():
        raise CertificateError(
            f"no CA in {ca_dir} (need {CA_CERT} and {CA_KEY}): run `campusgate certs init` first"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        raise CertificateError(f"cannot read the CA in {ca_dir}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_path} is not a key made by `campusgate certs init`")
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    cert_path: Path,
    key_path: Path,
    *,
    days: int,
    now: datetime | None,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> Issued:
    start, end = _validity(days, now)
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return Issued(cert_path, key_path, end)
