"""Drive an on-premises worker the way the cloud does: the worker as a separate process, a paho
client publishing its jobs and collecting its answers, and a TCP relay that can lose packets."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from meterflow.localcloud.onsite_worker import OnsiteWorker
from onprem_worker.contracts import Channel, JobMessage, parse_topic, topic

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 1883


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Received:
    channel: Channel
    payload: bytes
    at: float  # time.monotonic() on arrival


class CloudClient:
    """Publishes jobs and cancels to one worker and records everything it sends back."""

    def __init__(self, tenant: str, worker: str) -> None:
        self.tenant = tenant
        self.worker = worker
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_name("cloud"), protocol=MQTTProtocolVersion.MQTTv5
        )
        self._client.on_message = self._on_message

    def __enter__(self) -> Self:
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(BROKER_HOST, BROKER_PORT)
        self._client.loop_start()
        self._client.subscribe([(topic(self.tenant, self.worker, channel), 1) for channel in _SITE_TO_CLOUD])
        if not subscribed.wait(10):
            raise TimeoutError("the cloud client could not subscribe")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        _, _, channel = parse_topic(message.topic)
        with self._arrived:
            self.received.append(Received(channel, bytes(message.payload), time.monotonic()))
            self._arrived.notify_all()

    def publish(self, channel: Channel, payload: bytes) -> None:
        info = self._client.publish(topic(self.tenant, self.worker, channel), payload, qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            raise TimeoutError(f"the broker did not acknowledge the {channel.value} message")

    def send_job(self, job: JobMessage) -> None:
        self.publish(Channel.JOBS, job.encode())

    def messages(self, channel: Channel, job_id: str | None = None) -> list[Received]:
        with self._arrived:
            return [
                message
                for message in self.received
                if message.channel is channel
                and (job_id is None or f'"job_id":"{job_id}"'.encode() in message.payload)
            ]

    def wait_for(
        self, channel: Channel, job_id: str, count: int = 1, timeout: float = 30.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(found := self.messages(channel, job_id)) < count:
                if not self._arrived.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"{count} {channel.value} message(s) for {job_id} never came: {found}")
            return found


_SITE_TO_CLOUD = (Channel.RESULTS, Channel.PROGRESS, Channel.HEARTBEATS)


class WorkerProcess(OnsiteWorker):
    """``python -m onprem_worker`` in its own process, against the local broker over plain TCP."""

    def __init__(self, directory: Path, tenant: str, worker: str, **environment: str) -> None:
        self.directory = directory
        self.tenant = tenant
        self.worker = worker
        self.journal_path = directory / "journal.sqlite3"
        site_environment = {
            "MF_TENANT": tenant,
            "MF_WORKER_ID": worker,
            "MF_MQTT_HOST": BROKER_HOST,
            "MF_MQTT_PORT": str(BROKER_PORT),
            "MF_MQTT_ALLOW_PLAINTEXT": "1",
            "MF_JOURNAL_PATH": str(self.journal_path),
            "MF_HEALTH_FILE": str(directory / "alive"),
            # the tests read the worker's INFO lines; a local cloud started earlier in this process
            # leaves MF_LOG_LEVEL=WARNING in os.environ for its own processes
            "MF_LOG_LEVEL": "INFO",
        } | environment
        super().__init__({**os.environ, **site_environment}, directory / "worker.log")

    def close(self) -> None:
        """Stop the worker if it runs, and end its persistent session on the shared broker."""
        if self.running:
            self.kill()
        _end_session(self.worker)

    def journal_rows(self, job_id: str) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.journal_path)) as journal:
            journal.row_factory = sqlite3.Row
            rows = journal.execute("SELECT * FROM jobs WHERE job_id = ? ORDER BY received_at", (job_id,))
            return [dict(row) for row in rows]

    def wait_for_journal(
        self, job_id: str, ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.journal_rows(job_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"journal of {job_id}: {self.journal_rows(job_id)}")
            time.sleep(0.05)


def _end_session(client_id: str) -> None:
    """Connect once with a clean start and no expiry: the broker forgets the worker's session."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
    properties.SessionExpiryInterval = 0
    client.connect(BROKER_HOST, BROKER_PORT, clean_start=True, properties=properties)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class LossyRelay:
    """A TCP relay to the broker whose client-to-broker direction can be cut: what the worker sends
    while ``drop_upstream`` is set is lost, as if the network failed before the broker got it."""

    def __init__(self) -> None:
        self.drop_upstream = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self._closed.is_set():
                client, _ = self._listener.accept()
                broker = socket.create_connection((BROKER_HOST, BROKER_PORT))
                threading.Thread(target=self._pump, args=(client, broker), daemon=True).start()

    def _pump(self, client: socket.socket, broker: socket.socket) -> None:
        with client, broker, contextlib.suppress(OSError):
            while not self._closed.is_set():
                readable, _, _ = select.select([client, broker], [], [], 0.2)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is broker:
                        client.sendall(data)
                    elif not self.drop_upstream.is_set():
                        broker.sendall(data)


@contextlib.contextmanager
def running_worker(directory: Path, **environment: str) -> Iterator[tuple[WorkerProcess, CloudClient]]:
    """A started worker with unique tenant and worker names, and the cloud client that drives it."""
    tenant, worker = unique_name("tenant"), unique_name("site")
    process = WorkerProcess(directory, tenant, worker, **environment)
    try:
        with CloudClient(tenant, worker) as cloud:
            process.start()
            yield process, cloud
    finally:
        process.close()
        print(f"--- worker log ({worker}) ---\n{process.log()}")  # pytest shows it when a test fails
