"""The local stand-in for the IoT topic rules: what sites publish reaches the site-messages queue.

In AWS, IoT Core rules select ``meterflow/+/+/results|progress|heartbeats`` and send
``{"topic", "payload"}`` to the site-messages queue; here one MQTT client with the bridge identity
does the same, with a persistent session and QoS 1, so a message published while it reconnects is
delivered when it is back. It acknowledges a message only after SQS accepted it: nothing a site
sent is lost between the broker and the queue.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from meterflow.bridge.domain.jobs import site_message_for_rule
from onprem_worker.contracts import SITE_TO_CLOUD, TOPIC_ROOT

logger = logging.getLogger("meterflow.sitebridge")

SUBSCRIPTIONS = [(f"{TOPIC_ROOT}/+/+/{channel.value}", 1) for channel in SITE_TO_CLOUD]


class SiteMessageBridge:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        host: str,
        port: int,
        ca_path: str,
        cert_path: str,
        key_path: str,
        client_id: str = "meterflow-bridge:site-bridge",
    ) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._host, self._port = host, port
        self._subscribed = threading.Event()
        # manual acks: the broker redelivers anything SQS did not take
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        self._client.tls_set(
            ca_certs=ca_path, certfile=cert_path, keyfile=key_path, tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            logger.error("site bridge could not connect: %s", reason)
            return
        client.subscribe(SUBSCRIPTIONS)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=site_message_for_rule(message.topic, bytes(message.payload)),
            )
        except Exception:
            # not acknowledged: the broker delivers it again after a reconnect
            logger.exception("site message on %s not forwarded; it stays with the broker", message.topic)
            client.disconnect()
            client.reconnect()
            return
        client.ack(message.mid, message.qos)

    def start(self, timeout_s: float = 15.0) -> SiteMessageBridge:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"site bridge not subscribed at {self._host}:{self._port} after {timeout_s} s")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
