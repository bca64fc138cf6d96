"""The local MQTT broker's certificate authority: one CA, a server certificate, one client certificate
per identity (mutual TLS, issue 4 item 6).

Identities are encoded in the client certificate's subject:

* ``CN`` (common name) is the identity: a worker's id, or ``meterflow-bridge`` for the cloud bridge.
  Brokers map it to the MQTT username (Mosquitto's ``use_identity_as_username``), so it is what the
  topic ACL is written against. Identity names are unique across all tenants, as IoT Core thing names
  are unique per account: the same worker id cannot be issued for two tenants.
* ``OU`` (organizational unit) is the worker's tenant; the bridge has none.
* ``O`` is always ``Meterflow``.

Everything lives in one directory: ``ca.crt``/``ca.key``, ``server.crt``/``server.key`` and
``clients/<identity>.crt``/``.key``. Files are created once and reused, so certificates handed to a
worker stay valid across restarts of the local runtime; private keys are mode 0600. Keys are EC P-256:
small, fast to generate, and accepted by OpenSSL (Mosquitto), Python's ``ssl`` and AWS IoT Core.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onprem_worker.contracts import valid_name

logger = logging.getLogger("meterflow.mqtt")

ORGANIZATION = "Meterflow"
DEFAULT_SERVER_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=397)  # the CA/Browser Forum ceiling, so no client ever balks at the lifetime
# A certificate this close to its end is reissued rather than reused, so a worker never gets one that
# expires during the week it was handed out.
RENEW_BEFORE = timedelta(days=30)
# Backdating covers clocks a little behind the one that issued the certificate (a VM, a container).
_CLOCK_SKEW = timedelta(minutes=5)
_DIRECTORY_MODE = 0o700
_PRIVATE_FILE_MODE = 0o600
_PUBLIC_FILE_MODE = 0o644


@dataclass(frozen=True)
class CertPaths:
    """A certificate and its private key, as PEM files (``cert`` may be handed out, ``key`` never)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateIdentity:
    """Who a client certificate names: ``name`` from the CN, ``tenant`` from the OU (None for the bridge)."""

    name: str
    tenant: str | None


def identity_of(certificate: x509.Certificate) -> CertificateIdentity:
    """Read the identity back from a client certificate issued by :class:`LocalPki`."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise ValueError("a client certificate names exactly one identity (CN)")
    tenants = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(tenants) > 1:
        raise ValueError("a client certificate names at most one tenant (OU)")
    return CertificateIdentity(
        name=_text(names[0].value), tenant=_text(tenants[0].value) if tenants else None
    )


class LocalPki:
    """A private CA under ``directory`` that issues the local broker's and its clients' certificates.

    Every method is idempotent: it returns the existing files when they still fit and only creates
    what is missing or about to expire. A file lock makes concurrent processes (the runtime and a test,
    two workers provisioning themselves) agree on one CA instead of racing to write two.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def ca_path(self) -> Path:
        """The CA certificate: the trust anchor that brokers and clients verify each other with."""
        return self.directory / "ca.crt"

    def server_cert(self, hosts: Sequence[str] = DEFAULT_SERVER_HOSTS) -> CertPaths:
        """The broker's certificate, valid for every name and IP address in ``hosts`` (SANs)."""
        if not hosts:
            raise ValueError("a server certificate needs at least one host name or address")
        wanted = _subject_alternative_names(hosts)
        paths = CertPaths(self.directory / "server.crt", self.directory / "server.key")
        with self._locked():
            ca_key, ca_cert = self._load_or_create_ca()
            existing = _load_current_leaf(paths, ca_cert)
            if existing is not None and _sans_of(existing) == set(wanted):
                return paths
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                ]
            )
            builder = _leaf_builder(subject, ca_cert, ExtendedKeyUsageOID.SERVER_AUTH).add_extension(
                x509.SubjectAlternativeName(wanted), critical=False
            )
            _issue(builder, ca_key, paths)
            logger.info("issued MQTT server certificate for %s", ", ".join(hosts))
        return paths

    def client_cert(self, identity: str, tenant: str | None) -> CertPaths:
        """The client certificate of ``identity`` (CN), recording ``tenant`` (OU) for a worker.

        Raises ValueError when ``identity`` already holds a certificate for another tenant: the
        broker authorises by CN alone, so one name bound to two tenants would share their topics.
        """
        valid_name(identity, "identity")
        if tenant is not None:
            valid_name(tenant, "tenant")
        paths = CertPaths(
            self.directory / "clients" / f"{identity}.crt", self.directory / "clients" / f"{identity}.key"
        )
        with self._locked():
            ca_key, ca_cert = self._load_or_create_ca()
            if paths.cert.exists():
                recorded = identity_of(x509.load_pem_x509_certificate(paths.cert.read_bytes()))
                if recorded.tenant != tenant:
                    raise ValueError(
                        f"identity {identity!r} is already issued for tenant {recorded.tenant!r}, "
                        f"not {tenant!r}: identity names are unique across tenants"
                    )
            if _load_current_leaf(paths, ca_cert) is not None:
                return paths
            attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
            if tenant is not None:
                attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, tenant))
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, identity))
            builder = _leaf_builder(x509.Name(attributes), ca_cert, ExtendedKeyUsageOID.CLIENT_AUTH)
            _issue(builder, ca_key, paths)
            logger.info("issued MQTT client certificate for %s (tenant %s)", identity, tenant or "-")
        return paths

    # -- internals -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load_or_create_ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path = self.directory / "ca.key"
        if self.ca_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            return key, x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        if self.ca_path.exists() or key_path.exists():
            # Half a CA cannot be repaired: a new key would not match the certificate already handed out.
            raise RuntimeError(f"{self.directory} holds only half of a CA (ca.crt/ca.key); remove both")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, "Meterflow local MQTT CA"),
            ]
        )
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_pair(key, certificate, CertPaths(self.ca_path, key_path))
        logger.info("created local MQTT CA %s", self.ca_path)
        return key, certificate


def _leaf_builder(
    subject: x509.Name, ca_cert: x509.Certificate, purpose: x509.ObjectIdentifier
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # The purpose keeps a worker's certificate from serving as a broker's, and the reverse.
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
        )
    )


def _issue(builder: x509.CertificateBuilder, ca_key: ec.EllipticCurvePrivateKey, paths: CertPaths) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = builder.public_key(key.public_key()).add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    _write_pair(key, builder.sign(ca_key, hashes.SHA256()), paths)


def _load_current_leaf(paths: CertPaths, ca_cert: x509.Certificate) -> x509.Certificate | None:
    """The certificate at ``paths`` when it is complete, issued by this CA and not about to expire."""
    if not (paths.cert.exists() and paths.key.exists()):
        return None
    certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return None
    if certificate.not_valid_after_utc - datetime.now(UTC) < RENEW_BEFORE:
        return None
    return certificate


def _subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _sans_of(certificate: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def _write_pair(key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, paths: CertPaths) -> None:
    # The key lands first: a certificate on disk always has its key beside it.
    _write_atomically(
        paths.key,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        _PRIVATE_FILE_MODE,
    )
    _write_atomically(paths.cert, certificate.public_bytes(serialization.Encoding.PEM), _PUBLIC_FILE_MODE)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600, so a private key is never readable by others, not even briefly.
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
