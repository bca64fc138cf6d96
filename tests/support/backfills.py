"""Backfills of an on-premises site's historian, as the functional tests drive them: the API's
request, and what the site sends back through the IoT rule (or the local bridge) to the
site-messages queue."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from onprem_worker.contracts import Channel, topic

JSON = {"Content-Type": "application/json"}
TENANT = "acme"
WORKER = "plant-1"


@dataclass(frozen=True)
class Backfill:
    job_id: str
    execution_arn: str
    prepare_job: str  # the PrepareUpload Task's message on the bridge-jobs queue, with its task token


def backfill_request(**changes: object) -> bytes:
    """A POST /backfills body: an hour of TENANT/WORKER's historian, with ``changes``."""
    body = {
        "tenant": TENANT,
        "worker": WORKER,
        "start": "2023-01-02T00:00:00Z",
        "end": "2023-01-02T01:00:00Z",
    }
    return json.dumps(body | changes).encode()


def rule_delivery(channel: Channel, payload: bytes, tenant: str = TENANT, worker: str = WORKER) -> str:
    """A site's MQTT message as the site-messages rule puts it on SQS (``SELECT encode(*, 'base64')
    AS payload, topic() AS topic``)."""
    return json.dumps(
        {"topic": topic(tenant, worker, channel), "payload": base64.b64encode(payload).decode()}
    )
