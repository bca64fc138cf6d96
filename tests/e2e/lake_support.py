"""Helpers for the lake end-to-end tests: waiting on workflows and reading what the lake holds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from meterflow.lake_wiring import LakeServices

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout_s: float = 180, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def file_status(lake: LakeServices, file_id: str) -> dict[str, Any] | None:
    item = lake.clients.dynamodb.get_item(
        TableName=lake.settings.lake_files_table, Key={"file_id": {"S": file_id}}, ConsistentRead=True
    ).get("Item")
    return None if item is None else {name: next(iter(value.values())) for name, value in item.items()}


def wait_ingested(lake: LakeServices, file_id: str, timeout_s: float = 240) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = file_status(lake, file_id)
        if status and status["status"] == "failed":
            raise AssertionError(f"ingestion of {file_id} failed: {status.get('failure_reason')}")
        return status if status and status["status"] == "ingested" else None

    return wait_for(done, timeout_s, f"ingestion of {file_id}")


def manifest(lake: LakeServices, file_id: str) -> dict[str, Any]:
    found = lake.integrated.get(f"manifests/{file_id}.json")
    assert found is not None, f"no manifest for {file_id}"
    return dict(json.loads(found.data))


def wait_late_merged(lake: LakeServices, file_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    """The late-read consumer's records for every late-partition group the file announced."""
    groups = manifest(lake, file_id)["late_groups"]

    def records() -> list[dict[str, Any]] | None:
        found = [
            lake.integrated.get(f"manifests/{file_id}/late/group-{index:05d}.json") for index in range(groups)
        ]
        if any(item is None for item in found):
            return None
        return [json.loads(item.data) for item in found if item is not None] or [{}]

    result = wait_for(records, timeout_s, f"late reads of {file_id} merged")
    return [record for record in result if record]


def partition_objects(lake: LakeServices, prefix: str = "readings/parquet/") -> dict[str, bytes]:
    objects = {}
    for key in lake.integrated.list_keys(prefix):
        found = lake.integrated.get(key)
        assert found is not None
        objects[key] = found.data
    return objects


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.py_buffer(data))
