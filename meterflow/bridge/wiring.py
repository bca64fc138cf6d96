"""Wiring for every runtime that serves the on-premises bridge (Lambda, the local worker host).

How site jobs are published is configuration (:class:`~meterflow.bridge.settings.BridgeSettings`):
``MF_BRIDGE_SITE_PUBLISH=iot-data`` (AWS IoT Core, through the ``iot-data`` API) or ``mqtt`` (any
broker, with the bridge's client certificate: the local Mosquitto or the embedded broker). The
domain sees a :class:`~meterflow.bridge.ports.SitePublisher` either way.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import boto3
from botocore.config import Config

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.aws.messaging import StepFunctionsWorkflow, TaskTokenCallbacks
from meterflow.bridge.adapters.jobs_table import DynamoDbBridgeJobs
from meterflow.bridge.adapters.site_publishers import IotDataSitePublisher, MqttSitePublisher
from meterflow.bridge.adapters.uploads import S3ObjectHead, S3UploadPresigner
from meterflow.bridge.ports import SitePublisher, TaskCallbacks
from meterflow.bridge.settings import BridgeSettings
from meterflow.core.timeutil import utc_now


@dataclass(frozen=True)
class BridgeServices:
    settings: BridgeSettings
    clients: AwsClients
    jobs: DynamoDbBridgeJobs
    workflow: StepFunctionsWorkflow
    presigner: S3UploadPresigner
    inbound: S3ObjectHead
    publisher_factory: Callable[[], SitePublisher]
    clock: Callable[[], datetime] = field(default=utc_now)

    @functools.cached_property
    def publisher(self) -> SitePublisher:
        """Connected on first use: a process that never publishes never connects."""
        return self.publisher_factory()

    def callbacks_for(self, task_token: str) -> TaskCallbacks:
        return TaskTokenCallbacks(self.clients.stepfunctions, task_token)


def connected_mqtt_client(settings: BridgeSettings, timeout_s: float = 10.0) -> object:
    """A paho client with the bridge identity, connected over mutual TLS, its loop running."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.mqtt_client_id}:publisher-{os.getpid()}",  # one session per process
        protocol=mqtt.MQTTv311,
    )
    client.tls_set(
        ca_certs=settings.mqtt_ca,
        certfile=settings.mqtt_cert,
        keyfile=settings.mqtt_key,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    client.loop_start()
    connected.wait(timeout_s)  # not connected yet: publishes fail fast with PublishFailed
    return client


def _publisher_factory(settings: BridgeSettings, clients: AwsClients) -> Callable[[], SitePublisher]:
    if settings.site_publish == "iot-data":

        def iot_data() -> SitePublisher:
            endpoint = f"https://{settings.iot_data_endpoint}" if settings.iot_data_endpoint else None
            return IotDataSitePublisher(
                boto3.session.Session().client("iot-data", region_name=settings.region, endpoint_url=endpoint)
            )

        return iot_data
    return lambda: MqttSitePublisher(connected_mqtt_client(settings))


def build_bridge_services(settings: BridgeSettings, clients: AwsClients | None = None) -> BridgeServices:
    clients = clients or aws_clients(settings.region)
    return BridgeServices(
        settings=settings,
        clients=clients,
        jobs=DynamoDbBridgeJobs(clients.dynamodb, settings.bridge_jobs_table),
        workflow=StepFunctionsWorkflow(clients.stepfunctions, settings.backfill_state_machine_arn),
        # SigV4, whatever the client's default: AWS refuses SigV2 presigned URLs in newer regions
        presigner=S3UploadPresigner(
            boto3.session.Session().client(
                "s3", region_name=settings.region, config=Config(signature_version="s3v4")
            ),
            settings.inbound_bucket,
        ),
        inbound=S3ObjectHead(clients.s3, settings.inbound_bucket),
        publisher_factory=_publisher_factory(settings, clients),
    )


@functools.cache
def bridge_services() -> BridgeServices:
    """The process-wide bridge services, built on first use from the environment."""
    return build_bridge_services(BridgeSettings.from_env())
