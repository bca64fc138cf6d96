"""Settings of the runtimes that serve the on-premises bridge, read once from the environment by its wiring.

Variables ``MF_BRIDGE_<FIELD>``, and the shared ones of :mod:`meterflow.core.settings`; Terraform
sets them on the Lambda functions and the local runtime on its processes.

How site jobs are published is configuration: ``MF_BRIDGE_SITE_PUBLISH=iot-data`` (AWS IoT Core,
through the ``iot-data`` API) or ``mqtt`` (any broker, with the bridge's client certificate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from meterflow.core.settings import FeatureSettings, InboundBucket

PublishTransport = Literal["iot-data", "mqtt"]
PREFIX = "MF_BRIDGE_"


class BridgeSettings(FeatureSettings, env_prefix=PREFIX):
    # Named without repeating the prefix (MF_BRIDGE_JOBS_TABLE, not MF_BRIDGE_BRIDGE_...).
    bridge_jobs_table: str = Field(validation_alias=f"{PREFIX}JOBS_TABLE")
    backfill_state_machine_arn: str
    inbound_bucket: InboundBucket
    site_publish: PublishTransport = "iot-data"
    iot_data_endpoint: str = ""
    mqtt_host: str = ""
    mqtt_port: int = 8883
    mqtt_ca: str = ""
    mqtt_cert: str = ""
    mqtt_key: str = ""
    mqtt_client_id: str = "meterflow-bridge"

    # site_publish=mqtt publishes with the bridge's own certificate: without these it cannot connect.
    MQTT_REQUIRED: ClassVar[tuple[str, ...]] = ("mqtt_host", "mqtt_ca", "mqtt_cert", "mqtt_key")

    @classmethod
    def required_fields(cls, values: Mapping[str, Any]) -> list[str]:
        required = super().required_fields(values)
        return required + list(cls.MQTT_REQUIRED) if values.get("site_publish") == "mqtt" else required
