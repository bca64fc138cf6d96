"""Watching the lake from outside, as an operator would: a file's ingestion status, its manifest
and the late-read consumer's records. Used by the demo, the benchmarks and the end-to-end tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from meterflow.lake.wiring import LakeServices

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout_s: float = 180, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def file_status(lake: LakeServices, file_id: str) -> dict[str, Any] | None:
    """The file's item in the lake-files table, flattened (status, failure_reason, counts)."""
    item = lake.clients.dynamodb.get_item(
        TableName=lake.settings.lake_files_table, Key={"file_id": {"S": file_id}}, ConsistentRead=True
    ).get("Item")
    return None if item is None else {name: next(iter(value.values())) for name, value in item.items()}


def wait_ingested(lake: LakeServices, file_id: str, timeout_s: float = 240) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = file_status(lake, file_id)
        if status and status["status"] == "failed":
            raise RuntimeError(f"ingestion of {file_id} failed: {status.get('failure_reason')}")
        return status if status and status["status"] == "ingested" else None

    return wait_for(done, timeout_s, f"ingestion of {file_id}")


def manifest(lake: LakeServices, file_id: str) -> dict[str, Any]:
    found = lake.integrated.get(f"manifests/{file_id}.json")
    if found is None:
        raise LookupError(f"no manifest for {file_id}")
    return dict(json.loads(found.data))


def late_records(lake: LakeServices, file_id: str) -> list[dict[str, Any]] | None:
    """The consumer's record of every late-partition group the file announced; None until all exist."""
    groups = manifest(lake, file_id)["late_groups"]
    found = [
        lake.integrated.get(f"manifests/{file_id}/late/group-{index:05d}.json") for index in range(groups)
    ]
    if any(item is None for item in found):
        return None
    return [json.loads(item.data) for item in found if item is not None]


def wait_late_merged(lake: LakeServices, file_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    # a list that may be empty is wrapped, so "no late reads" counts as done
    return wait_for(
        lambda: (records,) if (records := late_records(lake, file_id)) is not None else None,
        timeout_s,
        f"late reads of {file_id} merged",
    )[0]
