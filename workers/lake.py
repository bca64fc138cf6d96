"""Lake workflow jobs (ingest and input adapter). Each parses its payload and calls one domain function."""

from __future__ import annotations

from typing import Any

from meterflow.aws.task_runner import JobHandler
from meterflow.lake.domain import ingest, integrations
from meterflow.lake.wiring import LakeServices


def lake_handlers(services: LakeServices) -> dict[str, JobHandler]:
    def split_file(payload: dict[str, Any]) -> dict[str, Any]:
        return ingest.split_file(payload, services.inbound, services.integrated.bucket, services.tuning)

    def stage_range(payload: dict[str, Any]) -> dict[str, Any]:
        return ingest.stage_range(payload, services.inbound, services.integrated, services.meter_registry)

    def plan_compaction(payload: dict[str, Any]) -> dict[str, Any]:
        return ingest.plan_compaction(payload, services.integrated, services.tuning)

    def compact_partitions(payload: dict[str, Any]) -> dict[str, Any]:
        return ingest.compact_partitions(payload, services.integrated)

    def finalize_file(payload: dict[str, Any]) -> dict[str, Any]:
        return ingest.finalize_file(payload, services.integrated, services.events, services.clock())

    def request_hes_file(payload: dict[str, Any]) -> dict[str, Any]:
        return integrations.request_hes_file(payload, services.integrations, services.hes_api)

    def check_hes_file(payload: dict[str, Any]) -> dict[str, Any]:
        return integrations.check_hes_file(payload, services.integrations, services.hes_api)

    def download_hes_file(payload: dict[str, Any]) -> dict[str, Any]:
        return integrations.download_hes_file(payload, services.integrations, services.sftp, services.inbound)

    def uncompress_file(payload: dict[str, Any]) -> dict[str, Any]:
        return integrations.uncompress_file(payload, services.inbound, services.clock())

    return {
        "split_file": split_file,
        "stage_range": stage_range,
        "plan_compaction": plan_compaction,
        "compact_partitions": compact_partitions,
        "finalize_file": finalize_file,
        "request_hes_file": request_hes_file,
        "check_hes_file": check_hes_file,
        "download_hes_file": download_hes_file,
        "uncompress_file": uncompress_file,
    }
