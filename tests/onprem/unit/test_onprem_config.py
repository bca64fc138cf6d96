"""The worker's settings: environment only, TLS unless plain TCP is allowed, every problem at once."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onprem_worker.config import (
    DEFAULT_JOURNAL_PATH,
    ConfigError,
    MqttProtocol,
    WorkerSettings,
    health_file_from_environment,
)

BASE = {"MF_TENANT": "utility-a", "MF_WORKER_ID": "site-1", "MF_MQTT_HOST": "broker.example"}


def test_plain_tcp_is_refused_unless_explicitly_allowed() -> None:
    # GIVEN no TLS material WHEN the settings are read THEN the worker refuses to start, saying how to fix it
    with pytest.raises(ConfigError, match="MF_MQTT_ALLOW_PLAINTEXT=1"):
        WorkerSettings.from_environment(BASE)


def test_local_development_may_allow_plain_tcp_with_defaults() -> None:
    settings = WorkerSettings.from_environment(BASE | {"MF_MQTT_ALLOW_PLAINTEXT": "1"})
    assert settings.tls is None
    assert settings.broker_port == 1883
    assert settings.protocol is MqttProtocol.V5
    assert settings.journal_path == Path(DEFAULT_JOURNAL_PATH)
    assert settings.historian_url is None
    assert settings.heartbeat_interval(30) == pytest.approx(10.0)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    # GIVEN an environment wrong in several ways WHEN read THEN one error lists each problem
    environ = {
        "MF_TENANT": "Utility A",
        "MF_MQTT_CERT_FILE": str(tmp_path / "missing.pem"),
        "MF_MQTT_PORT": "http",
        "MF_HEARTBEAT_FRACTION": "0.9",
        "MF_MQTT_PROTOCOL": "4",
        "MF_HISTORIAN_URL": "postgresql://u@h/db",
    }
    with pytest.raises(ConfigError) as error:
        WorkerSettings.from_environment(environ)
    message = str(error.value)
    for fragment in (
        "MF_TENANT must be",
        "MF_WORKER_ID is required",
        "MF_MQTT_HOST is required",
        "MF_MQTT_CA_FILE is required",
        "missing.pem, which is not a readable file",
        "MF_MQTT_PORT must be an integer",
        "MF_HEARTBEAT_FRACTION must be between",
        "MF_MQTT_PROTOCOL must be '5' or '3.1.1'",
        "MF_HISTORIAN_URL must start with",
    ):
        assert fragment in message


def test_mounted_tls_files_build_a_verifying_client_context(tmp_path: Path) -> None:
    # GIVEN a CA and a client certificate mounted as files
    ca, cert, key = write_test_pki(tmp_path)
    environ = BASE | {
        "MF_MQTT_CA_FILE": str(ca),
        "MF_MQTT_CERT_FILE": str(cert),
        "MF_MQTT_KEY_FILE": str(key),
    }
    settings = WorkerSettings.from_environment(environ)
    # THEN the worker talks TLS 1.2+ on 8883, verifies the broker's name and certificate
    assert settings.broker_port == 8883
    assert settings.tls is not None
    context = settings.tls.ssl_context()
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_healthcheck_needs_only_the_health_file_setting() -> None:
    assert health_file_from_environment({"MF_HEALTH_FILE": "/run/alive"}) == Path("/run/alive")


def write_test_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a client certificate it signed, as PEM files."""

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.now(UTC)
    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test-ca"))
        .issuer_name(name("test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    client = (
        x509.CertificateBuilder()
        .subject_name(name("site-1"))
        .issuer_name(ca.subject)
        .public_key(client_key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "client.pem", directory / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths
