"""Helpers for the lake end-to-end tests: what the lake holds, object by object."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from meterflow.lake.wiring import LakeServices
from meterflow.localcloud.lake_watch import file_status, manifest, wait_for, wait_ingested, wait_late_merged

__all__ = [
    "file_status",
    "manifest",
    "partition_objects",
    "read_parquet",
    "wait_for",
    "wait_ingested",
    "wait_late_merged",
]


def partition_objects(lake: LakeServices, prefix: str = "readings/parquet/") -> dict[str, bytes]:
    objects = {}
    for key in lake.integrated.list_keys(prefix):
        found = lake.integrated.get(key)
        assert found is not None
        objects[key] = found.data
    return objects


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.py_buffer(data))
