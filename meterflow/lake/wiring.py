"""Wiring for every runtime that serves the lake (Lambda, the local worker host, the local API).

Adapters are built once per process from :class:`LakeSettings` and boto3 clients; entry points
ask for :func:`lake_services` and never construct clients themselves.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import boto3
import pyarrow as pa
import requests

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.aws.messaging import StepFunctionsWorkflow
from meterflow.core.timeutil import utc_now
from meterflow.lake.adapters.hes_source import HesHttpApi, SecretsManagerSftpSource
from meterflow.lake.adapters.integrations_table import DynamoDbIntegrations
from meterflow.lake.adapters.lake_store import EventBridgePublisher, S3LakeStore
from meterflow.lake.domain.ingest import METER_REGISTRY_KEY, LakeTuningSettings, load_meter_registry
from meterflow.lake.domain.ranges import RangeTuning
from meterflow.lake.domain.schema import LAKE_EVENT_SOURCE
from meterflow.lake.ports import QueryEngine
from meterflow.lake.settings import LakeSettings


class MeterRegistryCache:
    """The topology's meter ids, reloaded only when the registry object changes (one HEAD per use)."""

    def __init__(self, integrated: S3LakeStore) -> None:
        self._integrated = integrated
        self._etag: str | None = None
        self._meters: pa.Array | None = None
        self._lock = threading.Lock()

    def __call__(self) -> pa.Array:
        with self._lock:
            info = self._integrated.head(METER_REGISTRY_KEY)
            if self._meters is None or info is None or info.etag != self._etag:
                self._meters = load_meter_registry(self._integrated)
                self._etag = info.etag if info is not None else None
            return self._meters


@dataclass(frozen=True)
class LakeServices:
    settings: LakeSettings
    clients: AwsClients
    inbound: S3LakeStore
    integrated: S3LakeStore
    events: EventBridgePublisher
    integrations: DynamoDbIntegrations
    ingest_workflow: StepFunctionsWorkflow
    adapter_workflow: StepFunctionsWorkflow
    hes_api: HesHttpApi
    sftp: SecretsManagerSftpSource
    tuning: LakeTuningSettings
    meter_registry: Callable[[], pa.Array]
    clock: Callable[[], datetime] = field(default=utc_now)

    session: boto3.session.Session | None = None

    @functools.cached_property
    def engine(self) -> QueryEngine:
        """One engine per process: it looks for new files before every query."""
        return _query_engine(self)

    def query_engine(self) -> QueryEngine:
        return self.engine


def _query_engine(services: LakeServices) -> QueryEngine:
    settings = services.settings
    if settings.query_engine == "athena":
        from meterflow.lake.adapters.athena_engine import AthenaLakeEngine

        return AthenaLakeEngine(
            services.clients.athena,
            settings.athena_workgroup,
            settings.glue_database,
            timeout=settings.query_timeout_seconds,
        )
    from meterflow.lake.adapters.duckdb_engine import DuckDbLakeEngine, s3_filesystem_from_boto3

    filesystem = s3_filesystem_from_boto3(services.clients.s3, services.session)
    return DuckDbLakeEngine(filesystem, settings.integrated_bucket)


def build_lake_services(settings: LakeSettings, clients: AwsClients | None = None) -> LakeServices:
    session = boto3.session.Session(region_name=settings.region)
    clients = clients or aws_clients(settings.region, session)
    integrated = S3LakeStore(clients.s3, settings.integrated_bucket)
    return LakeServices(
        settings=settings,
        clients=clients,
        inbound=S3LakeStore(clients.s3, settings.inbound_bucket),
        integrated=integrated,
        events=EventBridgePublisher(clients.events, LAKE_EVENT_SOURCE),
        integrations=DynamoDbIntegrations(clients.dynamodb, settings.integrations_table),
        ingest_workflow=StepFunctionsWorkflow(clients.stepfunctions, settings.lake_ingest_state_machine_arn),
        adapter_workflow=StepFunctionsWorkflow(
            clients.stepfunctions, settings.input_adapter_state_machine_arn
        ),
        hes_api=HesHttpApi(requests.Session(), session.get_credentials(), settings.region),
        sftp=SecretsManagerSftpSource(clients.secretsmanager),
        tuning=LakeTuningSettings(
            ranges=RangeTuning(max_ranges=settings.max_ranges, min_range_bytes=settings.range_min_bytes),
            late_threshold_minutes=settings.late_threshold_minutes,
            partitions_per_group=settings.partitions_per_group,
        ),
        meter_registry=MeterRegistryCache(integrated),
        clock=_clock(settings.fixed_now),
        session=session,
    )


def _clock(fixed_now: datetime | None) -> Callable[[], datetime]:
    if fixed_now is None:
        return utc_now
    return lambda: fixed_now


@functools.cache
def lake_services() -> LakeServices:
    """The process-wide lake services, built on first use from the environment."""
    return build_lake_services(LakeSettings.from_env())
