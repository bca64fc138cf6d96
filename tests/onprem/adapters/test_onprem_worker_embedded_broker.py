"""The fresh-laptop path: the on-premises worker (its own process) against the embedded broker,
with the same mutual TLS and per-worker ACL the local runtime uses when Mosquitto is absent."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meterflow.localcloud.mqtt_broker import BrokerIdentity, EmbeddedBroker, mqtt_client_options
from meterflow.localcloud.onsite_worker import OnsiteWorker
from onprem_worker.contracts import Channel, JobMessage, ResultMessage, topic

TENANT, WORKER = "laptop", "worker-1"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    running = EmbeddedBroker(
        tmp_path_factory.mktemp("embedded"), [BrokerIdentity.bridge(), BrokerIdentity.worker(TENANT, WORKER)]
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def worker(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnsiteWorker]:
    home = tmp_path_factory.mktemp("site")
    options = mqtt_client_options(BrokerIdentity.worker(TENANT, WORKER), broker)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "MF_TENANT": TENANT,
        "MF_WORKER_ID": WORKER,
        "MF_MQTT_HOST": options.host,
        "MF_MQTT_PORT": str(options.port),
        "MF_MQTT_PROTOCOL": "3.1.1",  # amqtt speaks nothing newer
        "MF_MQTT_CA_FILE": str(options.ca_path),
        "MF_MQTT_CERT_FILE": str(options.cert_path),
        "MF_MQTT_KEY_FILE": str(options.key_path),
        "MF_JOURNAL_PATH": str(home / "journal.sqlite"),
        "MF_HEALTH_FILE": str(home / "healthy"),
    }
    running = OnsiteWorker(environment, home / "worker.log").start()
    yield running
    running.stop()


def test_a_job_round_trips_through_the_embedded_broker_over_mutual_tls(
    broker: EmbeddedBroker, worker: OnsiteWorker
) -> None:
    # GIVEN the cloud bridge's identity connected to the embedded broker, listening to the results
    options = mqtt_client_options(BrokerIdentity.bridge(), broker, connection="test")
    results: list[ResultMessage] = []
    arrived = threading.Event()
    subscribed = threading.Event()

    def on_message(_client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        results.append(ResultMessage.parse(bytes(message.payload)))
        arrived.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id, protocol=options.protocol)
    client.tls_set_context(options.tls_context())
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(options.host, options.port)
    client.loop_start()
    try:
        client.subscribe(topic(TENANT, WORKER, Channel.RESULTS), qos=1)
        assert subscribed.wait(10)
        # WHEN a no-op job is published on the worker's jobs topic
        job = JobMessage(
            job_id="embedded-1",
            job_type="noop",
            task_token="token-embedded-1",
            heartbeat_seconds=30,
            payload={},
            issued_at=datetime.now(UTC),
        )
        client.publish(topic(TENANT, WORKER, Channel.JOBS), job.encode(), qos=1).wait_for_publish(10)
        # THEN the worker answers with one success for that job and token
        assert arrived.wait(30)
        assert [(r.job_id, r.task_token, r.status.value) for r in results] == [
            ("embedded-1", "token-embedded-1", "succeeded")
        ]
    finally:
        client.disconnect()
        client.loop_stop()
