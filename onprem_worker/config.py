"""The worker's settings, read from the environment only.

Certificates and keys are files mounted into the container (``/certs`` by convention), never part
of the image; the environment names their paths. Every problem is reported at once, so a site
operator fixes a deployment in one pass instead of one error per restart.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from onprem_worker.contracts import InvalidMessage, valid_name
from onprem_worker.historians import HISTORIAN_SCHEMES

DEFAULT_JOURNAL_PATH = "/var/lib/meterflow/journal.sqlite3"
DEFAULT_HEALTH_FILE = "/tmp/meterflow-onprem-worker.alive"  # noqa: S108 (a liveness marker, no data)
DEFAULT_HEARTBEAT_FRACTION = 1 / 3
DEFAULT_HISTORIAN_BATCH_ROWS = 50_000
TLS_PORT = 8883
PLAINTEXT_PORT = 1883


class MqttProtocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"  # brokers without MQTT 5, such as the embedded amqtt broker


class ConfigError(ValueError):
    """The environment does not describe a worker that can run; the message lists every problem."""


@dataclass(frozen=True)
class TlsFiles:
    """The mutual-TLS material: the broker's CA, this worker's certificate and its private key."""

    ca_certs: Path
    certfile: Path
    keyfile: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the broker (hostname included) and presents our certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_certs))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=str(self.certfile), keyfile=str(self.keyfile))
        return context


@dataclass(frozen=True)
class WorkerSettings:
    tenant: str
    worker_id: str
    broker_host: str
    broker_port: int
    tls: TlsFiles | None  # None only when plaintext was explicitly allowed
    protocol: MqttProtocol
    keepalive_seconds: int
    journal_path: Path
    historian_url: str | None
    historian_batch_rows: int
    health_file: Path
    # Heartbeats go out every heartbeat_seconds * this fraction: two may be lost before the Task's
    # HeartbeatSeconds expires.
    heartbeat_fraction: float

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = _Environment(os.environ if environ is None else environ)
        tenant = env.name("MF_TENANT")
        worker_id = env.name("MF_WORKER_ID")
        broker_host = env.required("MF_MQTT_HOST")
        tls = env.tls_files()
        protocol = env.choice("MF_MQTT_PROTOCOL", MqttProtocol, MqttProtocol.V5)
        broker_port = env.integer("MF_MQTT_PORT", TLS_PORT if tls else PLAINTEXT_PORT, 1, 65_535)
        keepalive = env.integer("MF_MQTT_KEEPALIVE_SECONDS", 60, 5, 1_200)
        historian_url = env.historian_url()
        batch_rows = env.integer("MF_HISTORIAN_BATCH_ROWS", DEFAULT_HISTORIAN_BATCH_ROWS, 1, 10_000_000)
        fraction = env.fraction("MF_HEARTBEAT_FRACTION", DEFAULT_HEARTBEAT_FRACTION, 0.05, 0.5)
        env.raise_problems()
        return cls(
            tenant=tenant,
            worker_id=worker_id,
            broker_host=broker_host,
            broker_port=broker_port,
            tls=tls,
            protocol=protocol,
            keepalive_seconds=keepalive,
            journal_path=Path(env.optional("MF_JOURNAL_PATH") or DEFAULT_JOURNAL_PATH),
            historian_url=historian_url,
            historian_batch_rows=batch_rows,
            health_file=Path(env.optional("MF_HEALTH_FILE") or DEFAULT_HEALTH_FILE),
            heartbeat_fraction=fraction,
        )

    def heartbeat_interval(self, heartbeat_seconds: int) -> float:
        return heartbeat_seconds * self.heartbeat_fraction


def health_file_from_environment(environ: Mapping[str, str] | None = None) -> Path:
    """The health file alone: the Docker HEALTHCHECK needs no broker or tenant settings."""
    env = os.environ if environ is None else environ
    return Path(env.get("MF_HEALTH_FILE") or DEFAULT_HEALTH_FILE)


class _Environment:
    """Reads variables and collects every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problems.append(f"{name} is required")
            return ""
        return value

    def name(self, variable: str) -> str:
        value = self.required(variable)
        if value:
            try:
                valid_name(value, variable)
            except InvalidMessage as exc:
                self.problems.append(str(exc))
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, got {raw[:40]!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {value}")
        return value

    def fraction(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, got {raw[:40]!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {value}")
        return value

    def choice(self, name: str, kind: type[MqttProtocol], default: MqttProtocol) -> MqttProtocol:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return kind(raw)
        except ValueError:
            allowed = " or ".join(repr(member.value) for member in kind)
            self.problems.append(f"{name} must be {allowed}, got {raw[:40]!r}")
            return default

    def tls_files(self) -> TlsFiles | None:
        names = ("MF_MQTT_CA_FILE", "MF_MQTT_CERT_FILE", "MF_MQTT_KEY_FILE")
        paths = {name: self.optional(name) for name in names}
        if not any(paths.values()):
            if self.optional("MF_MQTT_ALLOW_PLAINTEXT") != "1":
                self.problems.append(
                    "no TLS material: set MF_MQTT_CA_FILE, MF_MQTT_CERT_FILE and MF_MQTT_KEY_FILE to the"
                    " mounted CA, client certificate and key (plain TCP needs MF_MQTT_ALLOW_PLAINTEXT=1,"
                    " for local development only)"
                )
            return None
        for name, path in paths.items():
            if path is None:
                self.problems.append(f"{name} is required with the other TLS files")
            elif not Path(path).is_file():
                self.problems.append(f"{name} names {path}, which is not a readable file (is it mounted?)")
        ca, cert, key = (Path(paths[name] or "") for name in names)
        return TlsFiles(ca_certs=ca, certfile=cert, keyfile=key)

    def historian_url(self) -> str | None:
        url = self.optional("MF_HISTORIAN_URL")
        if url is not None and not url.startswith(HISTORIAN_SCHEMES):
            self.problems.append(
                f"MF_HISTORIAN_URL must start with {', '.join(HISTORIAN_SCHEMES)}, got {url.split(':')[0]!r}"
            )
        return url

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError("invalid worker configuration:\n  - " + "\n  - ".join(self.problems))
