"""The on-premises worker as its own process (``python -m onprem_worker``), as the demo, the
benchmarks and the tests run it: start it with a site's environment, wait for its health marker,
stop it as ``docker stop`` does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from meterflow.localcloud.mqtt_broker import BrokerIdentity, LocalBroker, mqtt_client_options

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
_KILL_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05


class OnsiteWorker:
    """One worker process, restartable. ``environment`` is the whole environment the process gets
    (pass ``{**os.environ, ...}`` to inherit this one's); it must name ``MF_HEALTH_FILE``, the file
    the worker writes once connected and subscribed, which ``start`` waits for. Its output is
    appended to ``log_path``."""

    def __init__(self, environment: Mapping[str, str], log_path: Path) -> None:
        self.environment = dict(environment)
        self.health_file = Path(self.environment["MF_HEALTH_FILE"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = READY_TIMEOUT_SECONDS, **overrides: str) -> Self:
        """Start the worker (``overrides`` added to its environment) and wait until it is healthy;
        raises :class:`RuntimeError` with the log's tail when it exits or is not ready in time."""
        self.health_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "onprem_worker"],
                cwd=REPO_ROOT,
                env={**self.environment, **overrides},
                stdout=log,
                stderr=log,
            )
        self._wait_ready(self.process, ready_timeout_s)
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.health_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the on-premises worker did not become ready:\n{self.log_tail()}")
            time.sleep(_POLL_SECONDS)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def terminate(self, timeout_s: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, as ``docker stop`` sends it, and wait; returns the exit code (raises
        :class:`subprocess.TimeoutExpired` when it outlasts ``timeout_s``)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to say goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(_KILL_WAIT_SECONDS)

    def stop(self, timeout_s: float = STOP_TIMEOUT_SECONDS) -> None:
        """Terminate the worker if it runs, killing it when it outlasts ``timeout_s``."""
        if not self.running:
            return
        try:
            self.terminate(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()


def admit_worker(broker: LocalBroker, tenant: str, worker: str) -> dict[str, str]:
    """Admit one on-premises worker to ``broker``: a certificate for it and ACL entries for its own
    topics only. Returns its connection settings (``onprem_worker`` environment variables); its
    journal, historian and health file are the site's to choose."""
    identity = BrokerIdentity.worker(tenant, worker)
    broker.add_identity(identity)
    options = mqtt_client_options(identity, broker)
    return {
        "MF_TENANT": tenant,
        "MF_WORKER_ID": worker,
        "MF_MQTT_HOST": options.host,
        "MF_MQTT_PORT": str(options.port),
        "MF_MQTT_PROTOCOL": "3.1.1",  # what both local brokers speak (amqtt nothing newer)
        "MF_MQTT_CA_FILE": str(options.ca_path),
        "MF_MQTT_CERT_FILE": str(options.cert_path),
        "MF_MQTT_KEY_FILE": str(options.key_path),
    }
