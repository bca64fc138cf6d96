"""Site publishers: AWS IoT Core (the ``iot-data`` API) or any MQTT broker through paho."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from meterflow.bridge.ports import PublishFailed


class IotDataSitePublisher:
    """AWS IoT Core: ``iot-data`` Publish with QoS 1 (the broker acknowledges before it returns)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def publish(self, topic_name: str, payload: bytes) -> None:
        try:
            self._client.publish(topic=topic_name, qos=1, payload=payload)
        except (BotoCoreError, ClientError) as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc


class MqttSitePublisher:
    """Any MQTT broker (Mosquitto, the embedded one) through one paho client with the bridge identity.

    ``client`` is a connected ``paho.mqtt.client.Client`` whose network loop runs; a publish waits
    for the broker's PUBACK up to ``ack_timeout_s``.
    """

    def __init__(self, client: Any, ack_timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout = ack_timeout_s
        self._lock = threading.Lock()

    def publish(self, topic_name: str, payload: bytes) -> None:
        with self._lock:
            if not self._client.is_connected():
                raise PublishFailed("not connected to the broker")
            info = self._client.publish(topic_name, payload, qos=1)
        try:
            info.wait_for_publish(timeout=self._timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishFailed(str(exc)) from exc
        if not info.is_published():
            raise PublishFailed(f"no acknowledgement from the broker within {self._timeout} s (rc {info.rc})")
