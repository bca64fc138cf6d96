"""Settings of the lake runtimes (workers, ingest trigger, late-read consumer, scheduler, query API).

Read once from the environment by the lake wiring; Terraform sets the same variables on the Lambda
functions and the local runtime on its processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.hes.settings import require_env

QueryEngineName = Literal["duckdb", "athena"]


@dataclass(frozen=True)
class LakeSettings:
    region: str
    inbound_bucket: str
    integrated_bucket: str
    lake_jobs_queue_url: str
    integrations_table: str
    lake_files_table: str
    lake_ingest_state_machine_arn: str
    input_adapter_state_machine_arn: str
    alerts_topic_arn: str
    glue_database: str
    athena_workgroup: str
    query_engine: QueryEngineName = "duckdb"
    late_threshold_minutes: int = 60
    range_min_bytes: int = 16 * 1024 * 1024
    max_ranges: int = 150
    partitions_per_group: int = 24
    heartbeat_interval_seconds: float = 15.0
    # The simulated fleet's "now" (MF_FIXED_NOW), so the scheduler and the HES agree on time.
    fixed_now: datetime | None = None

    REQUIRED_ENV: ClassVar[tuple[str, ...]] = (
        "MF_INBOUND_BUCKET",
        "MF_INTEGRATED_BUCKET",
        "MF_LAKE_JOBS_QUEUE_URL",
        "MF_INTEGRATIONS_TABLE",
        "MF_LAKE_FILES_TABLE",
        "MF_LAKE_INGEST_STATE_MACHINE_ARN",
        "MF_INPUT_ADAPTER_STATE_MACHINE_ARN",
        "MF_ALERTS_TOPIC_ARN",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakeSettings:
        env = os.environ if env is None else env
        require_env(cls.REQUIRED_ENV, env)
        engine = env.get("MF_QUERY_ENGINE", "duckdb")
        if engine not in ("duckdb", "athena"):
            raise ValueError(f"MF_QUERY_ENGINE must be duckdb or athena, not {engine!r}")
        return cls(
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            inbound_bucket=env["MF_INBOUND_BUCKET"],
            integrated_bucket=env["MF_INTEGRATED_BUCKET"],
            lake_jobs_queue_url=env["MF_LAKE_JOBS_QUEUE_URL"],
            integrations_table=env["MF_INTEGRATIONS_TABLE"],
            lake_files_table=env["MF_LAKE_FILES_TABLE"],
            lake_ingest_state_machine_arn=env["MF_LAKE_INGEST_STATE_MACHINE_ARN"],
            input_adapter_state_machine_arn=env["MF_INPUT_ADAPTER_STATE_MACHINE_ARN"],
            alerts_topic_arn=env["MF_ALERTS_TOPIC_ARN"],
            glue_database=env.get("MF_GLUE_DATABASE", ""),
            athena_workgroup=env.get("MF_ATHENA_WORKGROUP", ""),
            query_engine=engine,  # type: ignore[arg-type]
            late_threshold_minutes=int(env.get("MF_LATE_THRESHOLD_MINUTES", "60")),
            range_min_bytes=int(env.get("MF_RANGE_MIN_BYTES", str(16 * 1024 * 1024))),
            max_ranges=int(env.get("MF_MAX_RANGES", "150")),
            partitions_per_group=int(env.get("MF_PARTITIONS_PER_GROUP", "24")),
            heartbeat_interval_seconds=float(env.get("MF_HEARTBEAT_INTERVAL_SECONDS", "15")),
            fixed_now=parse_hes_time(env["MF_FIXED_NOW"], "MF_FIXED_NOW")
            if env.get("MF_FIXED_NOW")
            else None,
        )

    def to_env(self) -> dict[str, str]:
        return {
            "MF_INBOUND_BUCKET": self.inbound_bucket,
            "MF_INTEGRATED_BUCKET": self.integrated_bucket,
            "MF_LAKE_JOBS_QUEUE_URL": self.lake_jobs_queue_url,
            "MF_INTEGRATIONS_TABLE": self.integrations_table,
            "MF_LAKE_FILES_TABLE": self.lake_files_table,
            "MF_LAKE_INGEST_STATE_MACHINE_ARN": self.lake_ingest_state_machine_arn,
            "MF_INPUT_ADAPTER_STATE_MACHINE_ARN": self.input_adapter_state_machine_arn,
            "MF_ALERTS_TOPIC_ARN": self.alerts_topic_arn,
            "MF_GLUE_DATABASE": self.glue_database,
            "MF_ATHENA_WORKGROUP": self.athena_workgroup,
            "MF_QUERY_ENGINE": self.query_engine,
            "MF_LATE_THRESHOLD_MINUTES": str(self.late_threshold_minutes),
            "MF_RANGE_MIN_BYTES": str(self.range_min_bytes),
            "MF_MAX_RANGES": str(self.max_ranges),
            "MF_PARTITIONS_PER_GROUP": str(self.partitions_per_group),
            "MF_HEARTBEAT_INTERVAL_SECONDS": str(self.heartbeat_interval_seconds),
            **({"MF_FIXED_NOW": format_hes_time(self.fixed_now)} if self.fixed_now is not None else {}),
        }
