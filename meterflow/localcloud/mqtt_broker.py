"""The local MQTT broker of the on-premises bridge: mutual TLS, one identity per client certificate, and
a topic ACL that lets a worker touch only its own topics (issue 4, items 6 and 7, local side).

Two implementations share one interface, :class:`LocalBroker`; :func:`start_local_broker` picks one:

* :class:`MosquittoBroker` runs a private ``mosquitto`` process on a free 127.0.0.1 port (never the
  system instance on 1883): a TLS-only listener requiring a client certificate signed by the local CA
  (:mod:`meterflow.localcloud.mqtt_pki`), the certificate's CN as username, ``acl_file`` written by
  :func:`acl_for`, persistence under its state directory.
* :class:`EmbeddedBroker` runs amqtt in a background thread when no Mosquitto binary exists (a fresh
  laptop). It enforces the same rules; see its docstring for the few that are weaker.

The rules, for both brokers:

* A client must present a certificate from the local CA; no certificate, another CA's certificate or
  plain TCP is refused during the TLS handshake.
* Its identity is the certificate's CN. A worker identity reads only
  ``meterflow/<tenant>/<worker>/{jobs,cancel}`` and writes only ``.../{results,progress,heartbeats}``;
  the bridge (``meterflow-bridge``) reads ``meterflow/+/+/{results,progress,heartbeats}`` and writes
  ``meterflow/+/+/{jobs,cancel}``; everything else is denied. Identity names are unique across tenants
  (:func:`acl_for` and the PKI refuse one name for two tenants), as IoT Core thing names are.
* A denied publish is dropped (MQTT 3.1.1 has no way to say so; Mosquitto answers MQTT 5 clients
  with reason 0x87). A denied subscription never delivers a message: amqtt refuses it in the SUBACK
  (0x80); Mosquitto 2.0's ``acl_file`` grants the SUBACK and then filters every message by the read
  ACL, which the adapter tests pin down.
* Clients use their identity as client id (``<identity>`` or ``<identity>:<connection>``, which
  :func:`mqtt_client_options` hands out) and MQTT 3.1.1 with ``clean_session=False``: a QoS 1 message
  published while a worker is offline waits for it.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from cryptography import x509
from paho.mqtt.enums import MQTTProtocolVersion

from meterflow.localcloud.background_loop import BackgroundLoop
from meterflow.localcloud.mqtt_pki import (
    DEFAULT_SERVER_HOSTS,
    CertificateIdentity,
    CertPaths,
    LocalPki,
    identity_of,
)
from meterflow.localcloud.net import free_port
from onprem_worker.contracts import CLOUD_TO_SITE, SITE_TO_CLOUD, TOPIC_ROOT, topic, valid_name

logger = logging.getLogger("meterflow.mqtt")

BRIDGE_IDENTITY = "meterflow-bridge"
# Holds a certificate but no ACL line: it proves the listener completes a mutual TLS handshake.
PROBE_IDENTITY = "meterflow-broker-probe"
CLIENT_ID_SEPARATOR = ":"  # not allowed in identity names, so "a:x" can never be mistaken for identity "a-x"

BrokerRole = Literal["worker", "bridge"]
TopicAccess = Literal["read", "write"]
_ACCESS_WORDS: Mapping[str, TopicAccess] = {"read": "read", "write": "write"}

_START_TIMEOUT_SECONDS = 20.0
_STOP_TIMEOUT_SECONDS = 10.0
_RELOAD_TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.05
_PORT_ATTEMPTS = 3
_DIRECTORY_MODE = 0o700
_MOSQUITTO_RELOADED = "Reloading config."
_MOSQUITTO_CANDIDATES = (
    Path("/usr/sbin/mosquitto"),  # Debian and Ubuntu, outside a normal user's PATH
    Path("/usr/local/sbin/mosquitto"),  # Homebrew on Intel macOS
    Path("/opt/homebrew/sbin/mosquitto"),  # Homebrew on Apple silicon
)


# The connection whose CONNECT amqtt is processing, for the overrides it calls on the way.
_CONNECTING_WRITER: ContextVar[Any] = ContextVar("meterflow_connecting_writer")


class BrokerStartError(RuntimeError):
    """The broker did not come up (or did not apply a new ACL) in time; the message says why."""


class _PortInUse(BrokerStartError):
    pass


# -- identities and the ACL -----------------------------------------------------------------------


@dataclass(frozen=True)
class TopicGrant:
    """``access`` to every topic matching ``pattern`` (MQTT wildcards). ``read`` covers subscribing."""

    access: TopicAccess
    pattern: str


@dataclass(frozen=True)
class BrokerIdentity:
    """A client of the broker, named by its certificate's CN: a tenant's worker, or the cloud bridge."""

    name: str
    tenant: str | None
    role: BrokerRole

    def __post_init__(self) -> None:
        valid_name(self.name, "identity")
        if self.role == "worker":
            if self.tenant is None:
                raise ValueError(f"worker {self.name!r} needs a tenant")
            valid_name(self.tenant, "tenant")
        elif self.role == "bridge":
            if self.tenant is not None:
                raise ValueError("the bridge serves every tenant, so it has none")
        else:
            raise ValueError(f"unknown role {self.role!r}")

    @classmethod
    def worker(cls, tenant: str, name: str) -> BrokerIdentity:
        return cls(name=name, tenant=tenant, role="worker")

    @classmethod
    def bridge(cls, name: str = BRIDGE_IDENTITY) -> BrokerIdentity:
        return cls(name=name, tenant=None, role="bridge")

    def grants(self) -> tuple[TopicGrant, ...]:
        if self.tenant is not None:
            reads = [topic(self.tenant, self.name, channel) for channel in CLOUD_TO_SITE]
            writes = [topic(self.tenant, self.name, channel) for channel in SITE_TO_CLOUD]
        else:
            reads = [f"{TOPIC_ROOT}/+/+/{channel.value}" for channel in SITE_TO_CLOUD]
            writes = [f"{TOPIC_ROOT}/+/+/{channel.value}" for channel in CLOUD_TO_SITE]
        return (
            *(TopicGrant("read", pattern) for pattern in reads),
            *(TopicGrant("write", pattern) for pattern in writes),
        )


def acl_for(identities: Iterable[BrokerIdentity]) -> str:
    """A Mosquitto ``acl_file`` granting each identity its topics and nothing else.

    Mosquitto denies whatever no line grants, so an identity missing here (or a certificate the
    runtime issued to someone unknown) can connect but touch no topic at all.
    """
    lines = [
        "# Generated by meterflow.localcloud.mqtt_broker and rewritten when an identity is added.",
        "# The username is the client certificate's CN (use_identity_as_username).",
    ]
    for identity in _by_name(identities).values():
        lines += ["", f"user {identity.name}"]
        lines += [f"topic {grant.access} {grant.pattern}" for grant in identity.grants()]
    return "\n".join(lines) + "\n"


class TopicAcl:
    """An ACL written by :func:`acl_for`, evaluated as the embedded broker enforces it.

    ``identity`` is the certificate's CN: Mosquitto's username (``user`` lines), the embedded broker's
    client-id identity; None (unauthenticated) is granted nothing.
    """

    def __init__(self, grants: Mapping[str, Sequence[TopicGrant]]) -> None:
        self._grants = {user: tuple(user_grants) for user, user_grants in grants.items()}

    @classmethod
    def parse(cls, text: str) -> TopicAcl:
        """Read the subset of Mosquitto's ``acl_file`` syntax that :func:`acl_for` writes; refuse the rest."""
        grants: dict[str, list[TopicGrant]] = {}
        current: list[TopicGrant] | None = None
        for number, raw_line in enumerate(text.splitlines(), start=1):
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            access_word, _, pattern = rest.strip().partition(" ")
            access = _ACCESS_WORDS.get(access_word)
            if keyword == "user" and rest.strip():
                current = grants.setdefault(rest.strip(), [])
            elif keyword == "topic" and current is not None and access is not None and pattern.strip():
                current.append(TopicGrant(access, pattern.strip()))
            else:
                # A "topic" line before any "user" would apply to every client in Mosquitto: never here.
                raise ValueError(f"ACL line {number} is not one acl_for writes: {line[:120]!r}")
        return cls(grants)

    def may_subscribe(self, identity: str | None, topic_filter: str) -> bool:
        """Only when every topic the filter can match is readable: ``meterflow/+/...`` is not a worker's."""
        return self._granted(identity, "read", topic_filter)

    def may_receive(self, identity: str | None, topic_name: str) -> bool:
        return self._granted(identity, "read", topic_name)

    def may_publish(self, identity: str | None, topic_name: str) -> bool:
        return self._granted(identity, "write", topic_name)

    def _granted(self, identity: str | None, access: TopicAccess, topic_filter: str) -> bool:
        if identity is None:
            return False
        return any(
            grant.access == access and _covers(grant.pattern, topic_filter)
            for grant in self._grants.get(identity, ())
        )


def _covers(pattern: str, topic_filter: str) -> bool:
    """Whether every topic matching ``topic_filter`` also matches ``pattern``.

    For a plain topic name this is ordinary MQTT matching; a wildcard in the filter is covered only by
    a wildcard at the same level of the pattern.
    """
    filter_levels = topic_filter.split("/")
    pattern_levels = pattern.split("/")
    for index, pattern_level in enumerate(pattern_levels):
        if pattern_level == "#":
            return True
        if index >= len(filter_levels):
            return False
        filter_level = filter_levels[index]
        if filter_level == "#" or pattern_level not in ("+", filter_level):
            return False
    return len(filter_levels) == len(pattern_levels)


def _by_name(identities: Iterable[BrokerIdentity]) -> dict[str, BrokerIdentity]:
    by_name: dict[str, BrokerIdentity] = {}
    for identity in identities:
        known = by_name.setdefault(identity.name, identity)
        if known != identity:
            # Brokers authorise by CN alone: one name for two tenants would share both tenants' topics.
            raise ValueError(f"identity {identity.name!r} is declared twice: {known} and {identity}")
    return by_name


# -- client options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqttClientOptions:
    """What a paho client needs to connect as one identity.

    ``client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=o.client_id, protocol=o.protocol,
    clean_session=False)``, ``client.tls_set_context(o.tls_context())``, ``client.connect(o.host, o.port)``.
    """

    host: str
    port: int
    ca_path: Path
    cert_path: Path
    key_path: Path
    client_id: str
    # 3.1.1 because amqtt speaks nothing newer; Mosquitto and IoT Core accept it too.
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the broker (CA and host name) and presents the client certificate."""
        # Python's default context already refuses anything older than TLS 1.2.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def mqtt_client_options(
    identity: BrokerIdentity, broker: LocalBroker, *, connection: str | None = None
) -> MqttClientOptions:
    """Issue (or reuse) ``identity``'s certificate and say how to reach ``broker`` with it.

    ``connection`` names one of several simultaneous connections of an identity (the client id becomes
    ``<identity>:<connection>``); a persistent session belongs to one client id. Topics come from the
    broker's ACL, so register the identity there too (constructor or ``add_identity``).
    """
    if connection is not None:
        valid_name(connection, "connection")
    paths = broker.pki.client_cert(identity.name, identity.tenant)
    return MqttClientOptions(
        host=broker.host,
        port=broker.port,
        ca_path=broker.ca_path,
        cert_path=paths.cert,
        key_path=paths.key,
        client_id=identity.name
        if connection is None
        else f"{identity.name}{CLIENT_ID_SEPARATOR}{connection}",
    )


def client_id_belongs_to(client_id: str, identity: str) -> bool:
    return identity_of_client_id(client_id) == identity


def identity_of_client_id(client_id: str | None) -> str:
    return (client_id or "").partition(CLIENT_ID_SEPARATOR)[0]


# -- brokers --------------------------------------------------------------------------------------


class LocalBroker(Protocol):
    """A running local broker: where it listens, which CA it trusts, and how to provision identities."""

    @property
    def kind(self) -> Literal["mosquitto", "embedded"]: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def ca_path(self) -> Path: ...

    @property
    def pki(self) -> LocalPki: ...

    def add_identity(self, identity: BrokerIdentity) -> None: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class _ManagedBroker(abc.ABC):
    """What both brokers share: state directory, certificates, ACL file, port choice, lifecycle."""

    kind: ClassVar[Literal["mosquitto", "embedded"]]

    def __init__(
        self,
        state_dir: Path,
        identities: Iterable[BrokerIdentity] = (),
        *,
        pki: LocalPki | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.acl_path = state_dir / "acl"
        self._pki = pki if pki is not None else LocalPki(state_dir / "pki")
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._identities = _by_name(identities)
        self._lifecycle = threading.Lock()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def ca_path(self) -> Path:
        return self._pki.ca_path

    @property
    def pki(self) -> LocalPki:
        return self._pki

    def start(self) -> None:
        with self._lifecycle:
            if self._port is not None:
                raise RuntimeError(f"{type(self).__name__} is already started")
            self.state_dir.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
            server = self._pki.server_cert(tuple(dict.fromkeys((self._host, *DEFAULT_SERVER_HOSTS))))
            self._write_acl()
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port = self._requested_port or free_port(self._host)
                try:
                    self._launch(port, server)
                except _PortInUse:
                    # A free port can be taken between choosing it and binding it; choose again.
                    if self._requested_port is not None or attempt == _PORT_ATTEMPTS:
                        raise
                    continue
                self._port = port
                break
        logger.info("%s MQTT broker listening on %s:%d (mutual TLS)", self.kind, self._host, self.port)

    def stop(self) -> None:
        with self._lifecycle:
            if self._port is not None:
                self._shutdown()
                logger.info("%s MQTT broker on %s:%d stopped", self.kind, self._host, self._port)
                self._port = None

    def add_identity(self, identity: BrokerIdentity) -> None:
        """Grant ``identity`` its topics; a running broker applies the new ACL before this returns."""
        with self._lifecycle:
            merged = _by_name([*self._identities.values(), identity])
            if merged == self._identities:
                return
            self._identities = merged
            self._write_acl()
            if self._port is not None:
                self._reload_acl()
        logger.info(
            "MQTT identity %s (%s, tenant %s) added", identity.name, identity.role, identity.tenant or "-"
        )

    def __enter__(self) -> Self:
        # start_local_broker hands out started brokers: "with" on one only arranges the stop.
        if self._port is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_acl(self) -> None:
        _write_private_text(self.acl_path, acl_for(self._identities.values()))

    @abc.abstractmethod
    def _launch(self, port: int, server: CertPaths) -> None:
        """Bring the broker up on ``port``; raise _PortInUse when that port is already bound."""

    @abc.abstractmethod
    def _reload_acl(self) -> None:
        """Make the running broker enforce the ACL file as it is now, before returning."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Stop the broker and release what ``_launch`` acquired; safe after a failed launch."""


class MosquittoBroker(_ManagedBroker):
    """A private ``mosquitto -c <generated conf>`` process (see the module docstring for its rules).

    Its state directory holds ``mosquitto.conf``, ``acl``, ``mosquitto.log`` (the broker's own log),
    ``console.log`` (what it printed before its log was open) and ``persistence/``: the database it
    writes on shutdown and every few seconds, so persistent sessions and their queued QoS 1 messages
    survive a restart on the same directory. ``add_identity`` rewrites the ACL and sends SIGHUP.

    A client id is not bound to the certificate here (Mosquitto 2.0 has no such rule): a client holding
    another valid certificate can take over a session id, ending that session and dropping what was
    queued for it (a denial of service), but the ACL is checked again at delivery, so it receives none
    of that session's messages.
    """

    kind: ClassVar[Literal["mosquitto", "embedded"]] = "mosquitto"

    def __init__(
        self,
        state_dir: Path,
        identities: Iterable[BrokerIdentity] = (),
        *,
        pki: LocalPki | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: Path | None = None,
    ) -> None:
        super().__init__(state_dir, identities, pki=pki, host=host, port=port)
        found = binary if binary is not None else find_mosquitto()
        if found is None:
            raise FileNotFoundError("no mosquitto binary on PATH or in the usual sbin directories")
        self.binary = found
        self.config_path = state_dir / "mosquitto.conf"
        self.log_path = state_dir / "mosquitto.log"
        self.console_path = state_dir / "console.log"
        self.persistence_dir = state_dir / "persistence"
        self._process: subprocess.Popen[bytes] | None = None
        self._reaper: weakref.finalize[[subprocess.Popen[bytes]], MosquittoBroker] | None = None

    def _launch(self, port: int, server: CertPaths) -> None:
        self.persistence_dir.mkdir(mode=_DIRECTORY_MODE, exist_ok=True)
        probe = self._pki.client_cert(PROBE_IDENTITY, None)
        _write_private_text(self.config_path, self._config_text(port, server))
        with self.console_path.open("ab") as console:
            process = subprocess.Popen(
                [str(self.binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C in the terminal reaches the owner, which stops the
                # broker after the clients that use it (site bridge, workers), not before them.
                process_group=0,
            )
        self._process = process
        # A broker its owner forgot to stop (or an interpreter exiting on an error) must not outlive
        # the process that started it; an explicit stop() runs this same finalizer first.
        self._reaper = weakref.finalize(self, _terminate, process)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not self._accepts_tls(port, probe):
            if process.poll() is not None:
                self._shutdown()
                output = self._tail(self.console_path) + self._tail(self.log_path)
                if "Address already in use" in output:
                    raise _PortInUse(f"port {port} is taken")
                raise BrokerStartError(f"mosquitto exited with status {process.returncode}:\n{output}")
            if time.monotonic() > deadline:
                self._shutdown()
                raise BrokerStartError(
                    f"mosquitto did not accept TLS on {self._host}:{port} within "
                    f"{_START_TIMEOUT_SECONDS:.0f}s; see {self.log_path}"
                )
            time.sleep(_POLL_SECONDS)

    def _config_text(self, port: int, server: CertPaths) -> str:
        lines = [
            "# Generated by meterflow.localcloud.mqtt_broker ; rewritten at every start.",
            # Only takes effect when started as root, where mosquitto would otherwise switch to a
            # "mosquitto" user that cannot read the 0600 keys and state written by this one.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {self.acl_path}",
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            # Bounds what a crash of the broker (not a clean stop, which always saves) can lose.
            "autosave_interval 5",
            # Jobs, heartbeats and results are small packets: waiting to coalesce them only adds latency.
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            "connection_messages true",
            f"listener {port} {self._host}",
            f"cafile {self.ca_path}",
            f"certfile {server.cert}",
            f"keyfile {server.key}",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
        ]
        return "\n".join(lines) + "\n"

    def _accepts_tls(self, port: int, probe: CertPaths) -> bool:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        context.load_cert_chain(probe.cert, probe.key)
        try:
            with (
                socket.create_connection((self._host, port), timeout=1.0) as raw,
                context.wrap_socket(raw, server_hostname=self._host) as tls,
            ):
                # A TLS goodbye, so the broker's log does not report the probe as an abrupt EOF.
                with contextlib.suppress(OSError):
                    tls.unwrap()
                return True
        except OSError:
            return False

    def _reload_acl(self) -> None:
        process = self._process
        assert process is not None
        logged_before = self.log_path.stat().st_size
        process.send_signal(signal.SIGHUP)
        # Mosquitto logs the line, then rereads the ACL in the same loop iteration, before serving any
        # other client: once the line is there, every later connection and message sees the new ACL.
        deadline = time.monotonic() + _RELOAD_TIMEOUT_SECONDS
        while not self._logged_since(logged_before, _MOSQUITTO_RELOADED):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BrokerStartError(f"mosquitto did not reload its ACL; see {self.log_path}")
            time.sleep(_POLL_SECONDS)

    def _logged_since(self, offset: int, line: str) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return line.encode() in log.read()

    def _shutdown(self) -> None:
        reaper, self._reaper, self._process = self._reaper, None, None
        if reaper is not None:
            reaper()

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        except FileNotFoundError:
            return ""


class EmbeddedBroker(_ManagedBroker):
    """amqtt 0.12.1 in a background thread with its own event loop: the fallback without Mosquitto.

    Same as Mosquitto: TLS only (1.2 or newer), a client certificate from the local CA required in the
    handshake, the certificate's CN as username (a username or password the client sends is ignored),
    the same ACL file for subscribe, receive and publish, QoS 1 messages queued for an offline
    persistent session, ``add_identity`` applied before it returns.

    Stricter than Mosquitto: a denied subscription is refused in the SUBACK (0x80); the client id must
    be the certificate's identity (``<identity>`` or ``<identity>:<connection>``), so no certificate
    can take over, resume or wipe another identity's session; a will message is refused at CONNECT
    unless its topic is one the identity may publish to (amqtt would otherwise send it past the ACL).

    Weaker than Mosquitto:

    * Nothing survives a restart of the broker: sessions, subscriptions and queued messages live in
      memory (amqtt's SQL persistence plugin needs aiosqlite, which is not a dependency).
    * MQTT 3.1.1 only; an MQTT 5 client is refused at CONNECT.
    * It relies on overriding private methods of amqtt 0.12.1 (pinned), each closing a hole found in
      its source (see :class:`_MutualTlsBroker`); another amqtt version needs them checked again.
    """

    kind: ClassVar[Literal["mosquitto", "embedded"]] = "embedded"

    def __init__(
        self,
        state_dir: Path,
        identities: Iterable[BrokerIdentity] = (),
        *,
        pki: LocalPki | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        super().__init__(state_dir, identities, pki=pki, host=host, port=port)
        self._background: BackgroundLoop[None] = BackgroundLoop(
            "meterflow-mqtt", "embedded MQTT broker", logger, _STOP_TIMEOUT_SECONDS
        )
        self._broker: Any = None

    def _launch(self, port: int, server: CertPaths) -> None:
        # amqtt logs every connection and transitions every session state change at INFO; Mosquitto
        # keeps the equivalent in its own file. Left alone when someone configured these loggers.
        for chatty in ("amqtt", "transitions"):
            if logging.getLogger(chatty).level == logging.NOTSET:
                logging.getLogger(chatty).setLevel(logging.WARNING)
        config = self._amqtt_config(port, server)
        try:
            self._background.start(
                lambda ready, stop_requested: self._serve(config, ready, stop_requested),
                _START_TIMEOUT_SECONDS,
            )
        except concurrent.futures.TimeoutError:
            self._shutdown()
            raise BrokerStartError(f"amqtt did not start within {_START_TIMEOUT_SECONDS:.0f}s") from None
        except Exception as exc:
            self._shutdown()
            if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EADDRINUSE:
                raise _PortInUse(f"port {port} is taken") from exc
            raise BrokerStartError(f"amqtt did not start: {exc}") from exc

    def _amqtt_config(self, port: int, server: CertPaths) -> dict[str, Any]:
        return {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{self._host}:{port}",
                    "ssl": True,
                    "cafile": str(self.ca_path),
                    "certfile": str(server.cert),
                    "keyfile": str(server.key),
                }
            },
            # Replaces amqtt's defaults, among them anonymous authentication and the $SYS publisher.
            "plugins": {f"{__name__}.{_CertificateAclPlugin.__qualname__}": {"acl_file": str(self.acl_path)}},
        }

    async def _serve(
        self, config: dict[str, Any], ready: concurrent.futures.Future[None], stop_requested: asyncio.Event
    ) -> None:
        broker = _MutualTlsBroker(config)
        await broker.start()
        self._broker = broker
        ready.set_result(None)
        try:
            await stop_requested.wait()
        finally:
            await broker.shutdown()

    def _reload_acl(self) -> None:
        broker = self._broker
        assert broker is not None

        async def reload() -> None:
            broker.plugins_manager.get_plugin(_CertificateAclPlugin.__name__).reload()

        asyncio.run_coroutine_threadsafe(reload(), self._background.loop).result(
            timeout=_RELOAD_TIMEOUT_SECONDS
        )

    def _shutdown(self) -> None:
        self._background.stop()
        self._broker = None


class _MutualTlsBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with the fixes the rules above need; an adapter test fails without each one."""

    @staticmethod
    def _create_ssl_context(listener: Any) -> ssl.SSLContext:
        context: ssl.SSLContext = Broker._create_ssl_context(listener)
        # amqtt asks for a client certificate but lets a client without one finish the handshake.
        # (Its context comes from ssl.create_default_context, which already refuses TLS before 1.2.)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[Any, Any]:
        connecting = _CONNECTING_WRITER.set(writer)
        try:
            handler, session = await super()._initialize_client_session(
                reader, writer, remote_address, remote_port
            )
        finally:
            _CONNECTING_WRITER.reset(connecting)
        # The one identity check. It comes before amqtt's own authentication, because by then amqtt
        # has registered the client's session under its client id (stranding the rightful owner's
        # subscriptions) and, resuming a stored session, kept the TLS object of its last connection.
        if not _owns_client_id(writer, session.client_id):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"client id {session.client_id!r} is not its certificate's identity")
        if session.parent == 1:
            # Only a CONNECT with clean_session=False resumes a stored session, but amqtt leaves that
            # session's flag as its last connection set it: a stored clean session would stay clean,
            # dropping what is published while this persistent client is away.
            session.clean_session = False
        return handler, session

    async def _delete_session(self, client_id: str) -> None:
        # A clean-session CONNECT deletes the stored session before it is authenticated: only the
        # session's owner may do that.
        writer = _CONNECTING_WRITER.get(None)
        if writer is None or _owns_client_id(writer, client_id):
            await super()._delete_session(client_id)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        # On every connect amqtt replays retained messages for each filter anyone holds, not only the
        # connecting client's own (which alone passed its subscribe ACL): skip the others' filters.
        topic_filter = subscription[0]
        if any(
            holder.client_id == session.client_id for holder, _ in self.subscriptions.get(topic_filter, [])
        ):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class _CertificateAclPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]
    """Authorises a client's will and topics by the ACL file.

    The identity is the client id's leading part, which :class:`_MutualTlsBroker` has checked against
    the certificate's CN. Not the MQTT username: resuming a stored session, amqtt overwrites it with
    whatever the client sent before any plugin runs, and messages routed meanwhile would be judged
    against that.
    """

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._acl_file = Path(self.config.acl_file)
        self._acl = TopicAcl.parse(self._acl_file.read_text())

    def reload(self) -> None:
        self._acl = TopicAcl.parse(self._acl_file.read_text())

    async def authenticate(self, *, session: Any) -> bool:
        identity = identity_of_client_id(session.client_id)
        if session.will_flag and not self._acl.may_publish(identity, session.will_topic):
            logger.warning(
                "refused %s: its will names topic %r it may not publish to", identity, session.will_topic
            )
            return False
        return True

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        if session is None or topic is None:
            return False
        identity = identity_of_client_id(session.client_id)
        if action == Action.SUBSCRIBE:
            return self._acl.may_subscribe(identity, topic)
        if action == Action.RECEIVE:
            return self._acl.may_receive(identity, topic)
        if action == Action.PUBLISH:
            return self._acl.may_publish(identity, topic)
        return False


def _owns_client_id(writer: Any, client_id: str | None) -> bool:
    identity = _peer_identity(writer.get_ssl_info())
    return identity is not None and client_id_belongs_to(client_id or "", identity.name)


def _peer_identity(ssl_object: ssl.SSLObject | None) -> CertificateIdentity | None:
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        return identity_of(x509.load_der_x509_certificate(der))
    except ValueError:
        return None


# -- choosing a broker ----------------------------------------------------------------------------


def find_mosquitto() -> Path | None:
    """The Mosquitto binary on PATH, or in an sbin directory a normal user's PATH tends to miss."""
    on_path = shutil.which("mosquitto")
    if on_path is not None:
        return Path(on_path)
    return next((path for path in _MOSQUITTO_CANDIDATES if path.is_file() and os.access(path, os.X_OK)), None)


def start_local_broker(
    state_dir: Path,
    identities: Iterable[BrokerIdentity],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> LocalBroker:
    """Start Mosquitto when its binary exists, else the embedded broker; both under ``state_dir``.

    The CA and certificates live in ``state_dir/pki`` whichever broker runs, so a worker provisioned
    once keeps working when the other broker is picked later.
    """
    pki = LocalPki(state_dir / "pki")
    binary = find_mosquitto()
    broker: MosquittoBroker | EmbeddedBroker
    if binary is not None:
        broker = MosquittoBroker(
            state_dir / "mosquitto", identities, pki=pki, host=host, port=port, binary=binary
        )
    else:
        broker = EmbeddedBroker(state_dir / "embedded", identities, pki=pki, host=host, port=port)
    broker.start()
    logger.info(
        "local MQTT broker: %s on %s:%d (%s)",
        broker.kind,
        broker.host,
        broker.port,
        binary if binary is not None else "no mosquitto binary found: amqtt in this process",
    )
    return broker


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # SIGTERM makes mosquitto write its database, keeping persistent sessions for the next start.
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning(
            "mosquitto %d ignored SIGTERM for %.0fs; killing it", process.pid, _STOP_TIMEOUT_SECONDS
        )
        process.kill()
        process.wait()


def _write_private_text(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # Atomic, so a broker rereading the file on reload never sees half of it.
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
