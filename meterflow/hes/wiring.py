"""Wiring for every runtime that serves the HES (Lambda, the local worker host, the local API).

Adapters are built here once per process, from :class:`HesSettings` and boto3 clients; entry points
ask for :func:`hes_services` and never construct clients themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.aws.messaging import SqsMessageQueue, StepFunctionsWorkflow
from meterflow.core.timeutil import utc_now
from meterflow.hes.adapters.dynamodb_requests import DynamoDbFileRequestRepository
from meterflow.hes.adapters.s3_store import S3ObjectStore
from meterflow.hes.domain.fleet import Fleet
from meterflow.hes.settings import HesSettings


@dataclass(frozen=True)
class HesServices:
    settings: HesSettings
    clients: AwsClients
    fleet: Fleet
    requests: DynamoDbFileRequestRepository
    file_requests_queue: SqsMessageQueue
    workflow: StepFunctionsWorkflow
    store: S3ObjectStore
    clock: Callable[[], datetime]


def build_hes_services(settings: HesSettings, clients: AwsClients | None = None) -> HesServices:
    clients = clients or aws_clients(settings.region)
    fixed_now = settings.fixed_now
    return HesServices(
        settings=settings,
        clients=clients,
        fleet=Fleet(settings.fleet),
        requests=DynamoDbFileRequestRepository(clients.dynamodb, settings.file_requests_table),
        file_requests_queue=SqsMessageQueue(clients.sqs, settings.file_requests_queue_url),
        workflow=StepFunctionsWorkflow(clients.stepfunctions, settings.export_state_machine_arn),
        store=S3ObjectStore(clients.s3, settings.exports_bucket),
        clock=(lambda: fixed_now) if fixed_now is not None else utc_now,
    )


@functools.cache
def hes_services() -> HesServices:
    """The process-wide services, built on first use from the environment."""
    return build_hes_services(HesSettings.from_env())
