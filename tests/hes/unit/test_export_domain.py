"""Export planning, chunk encoding and multipart grouping."""

from __future__ import annotations

import gzip
import itertools
from datetime import datetime

import pytest

from meterflow.core.errors import InvalidInput
from meterflow.hes.domain.export import (
    S3_MIN_PART_BYTES,
    ChunkJob,
    ExportWindow,
    PlanJob,
    encode_chunk,
    group_parts,
    plan_export,
)
from meterflow.hes.domain.fleet import Fleet

REQUEST_ID = "55e3059d-6274-4d97-89a8-40ca93bcd084"


def plan_job(start: str, end: str, started: datetime = datetime(2024, 1, 1, 12, 0, 0, 713000)) -> PlanJob:
    return PlanJob.from_payload(
        {
            "request_id": REQUEST_ID,
            "start_date": start,
            "end_date": end,
            "execution_name": REQUEST_ID,
            "execution_start_time": started.isoformat() + "Z",
        }
    )


def test_plan_counts_arithmetically_and_chunks_cover_every_record_once(fleet: Fleet) -> None:
    plan = plan_export(fleet, plan_job("2023-02-27 00:00:00", "2023-02-28 00:00:00"), 10_000, 1_000)
    total = 96 * fleet.records_per_slot
    assert plan.context.record_count == total
    covered = [(chunk.first_index, chunk.count) for chunk in plan.chunks]
    assert covered[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(covered))
    assert sum(n for _, n in covered) == total


def test_plan_names_the_file_as_seed_000(fleet: Fleet) -> None:
    plan = plan_export(fleet, plan_job("2023-02-27 16:00:00", "2023-02-27 16:40:00"), 10_000, 1_000)
    assert plan.context.sftp_location == f"{REQUEST_ID}/run-1704110400713-part-r-00000.gz"
    assert plan.context.object_key == f"exports/{plan.context.sftp_location}"


def test_huge_windows_stay_within_the_chunk_cap(fleet: Fleet) -> None:
    plan = plan_export(fleet, plan_job("2023-01-01 00:00:00", "2023-12-31 00:00:00"), 1_000, 50)
    assert len(plan.chunks) <= 50
    assert sum(chunk.count for chunk in plan.chunks) == plan.context.record_count


def test_chunk_encoding_is_a_headerless_gzip_csv_one_line_per_record(fleet: Fleet) -> None:
    plan = plan_export(fleet, plan_job("2023-02-27 16:00:00", "2023-02-27 17:00:00"), 700, 1_000)
    job = ChunkJob(plan.context, plan.chunks[1])
    lines = gzip.decompress(encode_chunk(fleet.records(job.context.window, 700, 700))).decode().splitlines()
    assert len(lines) == 700
    assert lines[0].count(",") == 9
    assert lines[0].split(",")[3] == "readings"
    assert lines[0][:26] == "2023-02-27 16:15:00.000000"  # record 701 lies in the second slot (495 per slot)


def test_parts_keep_order_and_respect_the_s3_minimum() -> None:
    sizes = [2 * 1024 * 1024, 4 * 1024 * 1024, 6 * 1024 * 1024, 1024, 1024]
    groups = group_parts(sizes)
    assert [i for group in groups for i in group] == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in group) >= S3_MIN_PART_BYTES for group in groups[:-1])
    assert group_parts([]) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ([], "body"),
        ({"start_date": "2023-02-27 16:00:00"}, "end_date"),
        ({"start_date": "2023-02-27 16:00:00", "end_date": "2023-02-27 16:00:00"}, "end_date"),
        ({"start_date": "2023-01-01", "end_date": "2025-01-01"}, "end_date"),
        ({"start_date": "2023-02-27", "end_date": "2023-02-28", "format": "xml"}, "format"),
        ({"start_date": 20230227, "end_date": "2023-02-28"}, "start_date"),
    ],
)
def test_bad_export_bodies_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ExportWindow.from_body(body)
    assert raised.value.field == field
