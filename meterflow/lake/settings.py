"""Settings of the lake runtimes (workers, ingest trigger, late-read consumer, scheduler, query API).

Read once from the environment by the lake wiring: variables ``MF_LAKE_<FIELD>``, and the shared
ones of :mod:`meterflow.core.settings`; Terraform sets them on the Lambda functions and the local
runtime on its processes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meterflow.core.settings import FeatureSettings, FixedNow, InboundBucket

QueryEngineName = Literal["duckdb", "athena"]
PREFIX = "MF_LAKE_"


class LakeSettings(FeatureSettings, env_prefix=PREFIX):
    inbound_bucket: InboundBucket
    integrated_bucket: str
    # Named without repeating the prefix (MF_LAKE_JOBS_QUEUE_URL, not MF_LAKE_LAKE_...).
    lake_jobs_queue_url: str = Field(validation_alias=f"{PREFIX}JOBS_QUEUE_URL")
    integrations_table: str
    lake_files_table: str = Field(validation_alias=f"{PREFIX}FILES_TABLE")
    lake_ingest_state_machine_arn: str = Field(validation_alias=f"{PREFIX}INGEST_STATE_MACHINE_ARN")
    input_adapter_state_machine_arn: str
    alerts_topic_arn: str
    glue_database: str = ""
    athena_workgroup: str = ""
    query_engine: QueryEngineName = "duckdb"
    late_threshold_minutes: int = 60
    range_min_bytes: int = 16 * 1024 * 1024
    max_ranges: int = 150
    partitions_per_group: int = 24
    # How long the query API waits for Athena before it stops the query and answers 504: less than
    # the API function's own timeout (28 s; API Gateway gives up at 29 s), or the function would be
    # killed first and the query left running (tests/static/test_terraform_defaults.py).
    query_timeout_seconds: float = Field(default=24.0, gt=0, le=27)
    # The simulated fleet's "now", so the scheduler and the HES agree on time.
    fixed_now: FixedNow = None
