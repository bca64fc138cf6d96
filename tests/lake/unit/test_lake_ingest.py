"""The lake-ingest jobs driven end to end over the in-memory lake ports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meterflow.core.errors import IntegrityError, RetryableError
from meterflow.core.timeutil import format_hes_time
from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.lake.domain import ingest
from meterflow.lake.domain.partitions import CodedRows, decode_parquet, encode_parquet
from meterflow.lake.domain.ranges import RangeTuning
from meterflow.lake.domain.schema import LONG_SCHEMA, READINGS_PREFIX, PartitionKey
from meterflow.lake.ports import ConcurrentUpdate
from tests.support.memory_lake import MemoryLakeStore, RecordingPublisher

START = datetime(2023, 1, 2)
END = datetime(2023, 1, 2, 6)
KEY = "uncompressed/x.csv"
BAD_LINE = b"bad,line\n"
TUNING = ingest.LakeTuningSettings(ranges=RangeTuning(min_range_bytes=100_000))
NOW = datetime(2023, 1, 2, 7)
THRESHOLD = timedelta(minutes=TUNING.late_threshold_minutes)
# The file answers the integration window [04:00, 06:00) but also holds reads of earlier hours
# (as a pull by arrival time does): hours that closed more than THRESHOLD before 04:00 are late.
WINDOW_START = datetime(2023, 1, 2, 4)


@pytest.fixture(scope="module")
def small_fleet() -> Fleet:
    return Fleet(FleetConfig(meter_count=300))


@pytest.fixture(scope="module")
def clean_data(small_fleet: Fleet) -> bytes:
    window = small_fleet.window(START, END)
    return encode_csv(small_fleet.records(window, 0, window.record_count))


@pytest.fixture(scope="module")
def lines(clean_data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(clean_data.decode())))


@pytest.fixture(scope="module")
def late_lines(lines: list[list[str]]) -> list[list[str]]:
    """Lines whose hour ended more than the lateness threshold before the ingestion window began."""

    def hour_end(moment: datetime) -> datetime:
        return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    return [line for line in lines if WINDOW_START - hour_end(datetime.fromisoformat(line[0])) > THRESHOLD]


@dataclass
class Lake:
    """One inbound file, the integrated zone and the event bus, and the jobs' outputs."""

    data: bytes
    registry: pa.Array
    inbound: MemoryLakeStore = field(default_factory=lambda: MemoryLakeStore("in"))
    integrated: MemoryLakeStore = field(default_factory=lambda: MemoryLakeStore("int"))
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)

    def __post_init__(self) -> None:
        self.inbound.put(KEY, self.data)

    def request(self, file_id: str) -> dict[str, Any]:
        return {
            "file_id": file_id,
            "bucket": "in",
            "key": KEY,
            "file_format": "hes_wide",
            "reading_source": "hes",
            "window_start": format_hes_time(WINDOW_START),
            "window_end": format_hes_time(END),
            "arrive_time": "2023-01-02T06:10:00Z",
        }

    def split(self, file_id: str) -> dict[str, Any]:
        return ingest.split_file(self.request(file_id), self.inbound, self.integrated.bucket, TUNING)

    def stage(self, split: dict[str, Any]) -> None:
        for byte_range in split["ranges"]:
            ingest.stage_range(
                {"file": split["file"], "range": byte_range},
                self.inbound,
                self.integrated,
                lambda: self.registry,
            )

    def plan(self, split: dict[str, Any]) -> dict[str, Any]:
        return ingest.plan_compaction(
            {"file": split["file"], "range_count": len(split["ranges"])}, self.integrated, TUNING
        )

    def compact(self, split: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
        return ingest.compact_partitions({"file": split["file"], "group": group}, self.integrated)

    def finalize(self, split: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
        return ingest.finalize_file(
            {"file": split["file"], "range_count": len(split["ranges"]), "group_count": len(plan["groups"])},
            self.integrated,
            self.publisher,
            NOW,
        )

    def merge_late(self) -> list[dict[str, Any]]:
        results = [ingest.merge_late_reads(detail, self.integrated) for _, detail in self.publisher.events]
        self.publisher.events.clear()
        return results

    def run(self, file_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The whole workflow for one file; returns (finalize result, late-merge results)."""
        split = self.split(file_id)
        self.stage(split)
        plan = self.plan(split)
        for group in plan["groups"]:
            self.compact(split, group)
        result = self.finalize(split, plan)
        return result, self.merge_late()

    def partitions(self) -> dict[str, bytes]:
        return {k: v.data for k, v in self.integrated.objects.items() if k.startswith(READINGS_PREFIX)}

    def json(self, key: str) -> dict[str, Any]:
        found = self.integrated.get(key)
        assert found is not None, key
        return dict(json.loads(found.data))


@pytest.fixture
def lake(clean_data: bytes, small_fleet: Fleet) -> Lake:
    return Lake(clean_data + BAD_LINE, small_fleet.device_ids)


@dataclass
class IngestedOnce:
    lake: Lake
    result: dict[str, Any]
    late_results: list[dict[str, Any]]
    published: list[tuple[str, dict[str, Any]]]
    partitions_before_late: dict[str, bytes]


@pytest.fixture(scope="module")
def ingested(clean_data: bytes, small_fleet: Fleet) -> IngestedOnce:
    """The file ingested once, late reads merged: read-only for the tests that use it."""
    lake = Lake(clean_data + BAD_LINE, small_fleet.device_ids)
    split = lake.split("f1")
    lake.stage(split)
    plan = lake.plan(split)
    for group in plan["groups"]:
        lake.compact(split, group)
    result = lake.finalize(split, plan)
    before_late = lake.partitions()
    published = list(lake.publisher.events)
    late_results = lake.merge_late()
    return IngestedOnce(lake, result, late_results, published, before_late)


def partition_table(data: bytes) -> pa.Table:
    return decode_parquet(data)


def partition_of(object_key: str) -> PartitionKey:
    parts = dict(part.split("=", 1) for part in object_key.split("/") if "=" in part)
    return PartitionKey(
        parts["reading_type"], int(parts["year"]), int(parts["month"]), int(parts["day"]), int(parts["hour"])
    )


# ---------------------------------------------------------------------------------------- end to end
def test_manifest_balances(
    ingested: IngestedOnce, lines: list[list[str]], late_lines: list[list[str]]
) -> None:
    # GIVEN the file (clean lines plus one bad line) ingested once
    manifest = ingested.lake.json("manifests/f1.json")
    # THEN every check holds and the counts match the file
    assert manifest["checks"]
    assert all(manifest["checks"].values())
    assert manifest["lines_read"] == len(lines) + 1
    assert manifest["lines_quarantined"] == 1
    assert manifest["quarantined_by_reason"] == {"wrong_column_count": 1}
    assert manifest["rows_staged"] == 6 * len(lines)
    assert manifest["rows_late_staged"] == 6 * len(late_lines)
    assert manifest["rows_written"] + manifest["rows_late_staged"] == 6 * len(lines)
    assert manifest["rows_duplicate"] == 0
    assert ingested.result["rows_written"] == manifest["rows_written"]


def test_quarantine_names_the_bad_line_by_its_file_line_number(
    ingested: IngestedOnce, lines: list[list[str]]
) -> None:
    # GIVEN the bad line is the file's last
    # WHEN the quarantine object is read
    found = ingested.lake.integrated.get("errors/f1/quarantined.csv")
    assert found is not None
    # THEN it holds that line's number in the whole file, its reason and its text
    assert list(csv.reader(io.StringIO(found.data.decode()))) == [
        ["line_number", "reason", "line"],
        [str(len(lines) + 1), "wrong_column_count", "bad,line"],
    ]


def test_partitions_hold_six_rows_per_record_each_within_its_hour(
    ingested: IngestedOnce, lines: list[list[str]]
) -> None:
    # GIVEN the ingested file with late reads merged
    partitions = ingested.lake.partitions()
    total = 0
    for object_key, data in partitions.items():
        # WHEN each partition is read
        table = partition_table(data)
        key = partition_of(object_key)
        total += table.num_rows
        # THEN each row lies within the partition's hour and the table has the long schema
        assert table.schema.equals(LONG_SCHEMA)
        for moment in table["reading_date_time"].to_pylist():
            assert key.hour_start <= moment < key.hour_start + timedelta(hours=1)
    # AND all six readings of every record landed (6 reading types x 6 hours)
    assert total == 6 * len(lines)
    assert len(partitions) == 36


def test_staging_of_on_time_rows_is_cleaned_up(ingested: IngestedOnce) -> None:
    # GIVEN a finalized file THEN its on-time staging is gone
    assert ingested.lake.integrated.list_keys("staging/f1/ontime/") == []


def test_late_rows_go_via_events_and_end_in_their_true_partition(
    ingested: IngestedOnce, late_lines: list[list[str]]
) -> None:
    # GIVEN a file with lines of hours that closed before its window began (00:00 and 01:00)
    assert {line[0][11:13] for line in late_lines} == {"00", "01"}
    # THEN late rows were announced by events, 6 per late line
    assert all(detail_type == "LateReadsStaged" for detail_type, _ in ingested.published)
    assert sum(detail["rows"] for _, detail in ingested.published) == 6 * len(late_lines)
    assert sum(result["rows_added"] for result in ingested.late_results) == 6 * len(late_lines)
    late_keys = {(line[2], datetime.fromisoformat(line[0])) for line in late_lines}

    def keys_in(partitions: Mapping[str, bytes], kind: str) -> dict[tuple[str, datetime], PartitionKey]:
        found = {}
        for object_key, data in partitions.items():
            if partition_of(object_key).reading_type == kind:
                table = partition_table(data)
                for meter, moment in zip(
                    table["meter_id"].to_pylist(), table["reading_date_time"].to_pylist(), strict=True
                ):
                    found[(meter, moment)] = partition_of(object_key)
        return found

    # AND they were not in the partitions before the late merge
    before = keys_in(ingested.partitions_before_late, "kw")
    assert late_keys.isdisjoint(before)
    # AND after it every late reading sits in the partition of its own hour
    after = keys_in(ingested.lake.partitions(), "kw")
    for meter, moment in late_keys:
        assert after[(meter, moment)] == PartitionKey.of("kw", moment)


def test_late_merge_writes_its_own_record(ingested: IngestedOnce) -> None:
    # GIVEN each late event merged
    for _, detail in ingested.published:
        record = ingested.lake.json(f"manifests/f1/late/group-{detail['group_index']:05d}.json")
        # THEN its record balances against the staged rows
        assert record["rows_added"] + record["rows_duplicate"] == record["rows_staged"] == detail["rows"]


def test_replaying_the_file_writes_nothing_and_keeps_partition_bytes(lake: Lake) -> None:
    # GIVEN a file ingested once
    lake.run("f1")
    snapshot = lake.partitions()
    # WHEN the same file is ingested again under a new file id
    result, late_results = lake.run("f2")
    # THEN no row is written, every row is a duplicate, and the partitions' bytes are unchanged
    assert result["rows_written"] == 0
    assert result["rows_duplicate"] + result["rows_late_staged"] == 6 * (result["lines_read"] - 1)
    assert all(late["rows_added"] == 0 for late in late_results)
    assert all(lake.json("manifests/f2.json")["checks"].values())
    assert lake.partitions() == snapshot


def test_rerunning_a_compaction_job_is_idempotent_and_reports_original_counts(lake: Lake) -> None:
    # GIVEN a file staged and one compaction group merged
    split = lake.split("f1")
    lake.stage(split)
    plan = lake.plan(split)
    group = plan["groups"][0]
    lake.compact(split, group)
    result_key = "staging/f1/compaction/group-00000.json"
    first = lake.json(result_key)
    snapshot = lake.partitions()
    # WHEN the same job runs again (a retried task)
    lake.compact(split, group)
    # THEN it reports the original counts (from the partition ledger), not "all duplicates"
    assert lake.json(result_key) == first
    assert all(p["rows_added"] > 0 and p["rows_duplicate"] == 0 for p in first["partitions"])
    # AND the partitions are untouched
    assert lake.partitions() == snapshot
    # AND the file still finalizes with balanced counts
    for other in plan["groups"][1:]:
        lake.compact(split, other)
    assert lake.finalize(split, plan)["rows_duplicate"] == 0


def test_rerunning_a_late_merge_is_idempotent_and_reports_original_counts(lake: Lake) -> None:
    # GIVEN a file ingested up to finalize with late reads announced
    split = lake.split("f1")
    lake.stage(split)
    plan = lake.plan(split)
    for group in plan["groups"]:
        lake.compact(split, group)
    lake.finalize(split, plan)
    detail = lake.publisher.events[0][1]
    first = ingest.merge_late_reads(detail, lake.integrated)
    snapshot = lake.partitions()
    # WHEN the event is redelivered
    # THEN the consumer's record answers with the original result
    assert ingest.merge_late_reads(detail, lake.integrated) == first
    # AND WHEN the record is lost and the merge runs again, the partition ledger gives the original counts
    record_key = f"manifests/f1/late/group-{detail['group_index']:05d}.json"
    lake.integrated.delete([record_key])
    again = ingest.merge_late_reads(detail, lake.integrated)
    assert again == first
    assert first["rows_added"] == detail["rows"]
    assert lake.partitions() == snapshot


def test_missing_range_result_makes_finalize_fail(lake: Lake) -> None:
    # GIVEN a file staged and compacted
    split = lake.split("f1")
    assert len(split["ranges"]) > 1
    lake.stage(split)
    plan = lake.plan(split)
    for group in plan["groups"]:
        lake.compact(split, group)
    # WHEN one range's result is missing
    lake.integrated.delete(["staging/f1/ranges/range-00001.json"])
    # THEN finalize refuses to publish a manifest
    with pytest.raises(IntegrityError, match="range 1"):
        lake.finalize(split, plan)
    assert lake.integrated.get("manifests/f1.json") is None


def test_stage_range_without_meter_registry_is_retryable(lake: Lake) -> None:
    # GIVEN an integrated zone without the topology's meter registry
    split = lake.split("f1")
    job = {"file": split["file"], "range": split["ranges"][0]}
    # WHEN a range is staged with the registry loaded from the lake
    # THEN it fails retryably (the topology dataflow has to run first)
    with pytest.raises(RetryableError, match="meter registry"):
        ingest.stage_range(
            job,
            lake.inbound,
            lake.integrated,
            lambda: ingest.load_meter_registry(lake.integrated),
        )


def test_stage_range_with_meter_registry_loads_it(lake: Lake) -> None:
    # GIVEN the meter registry published in the integrated zone
    sink = io.BytesIO()
    pq.write_table(pa.table({"meter_id": lake.registry}), sink)
    lake.integrated.put(ingest.METER_REGISTRY_KEY, sink.getvalue())
    split = lake.split("f1")
    # WHEN the first range is staged with the registry loaded from the lake
    result = ingest.stage_range(
        {"file": split["file"], "range": split["ranges"][0]},
        lake.inbound,
        lake.integrated,
        lambda: ingest.load_meter_registry(lake.integrated),
    )
    # THEN every line of the range is valid
    staged = lake.json("staging/f1/ranges/range-00000.json")
    assert staged["lines_valid"] == staged["lines_read"] == result["lines_read"] > 0


def test_split_of_a_missing_object_is_retryable(lake: Lake) -> None:
    # GIVEN a request for an object that has not landed WHEN split THEN the task retries
    request = lake.request("f1") | {"key": "uncompressed/missing.csv"}
    with pytest.raises(RetryableError):
        ingest.split_file(request, lake.inbound, "int", TUNING)


# ------------------------------------------------------------------------------------ concurrency
class RacingStore(MemoryLakeStore):
    """A store where another writer changes the partition just before our first conditional PUT."""

    def __init__(self, rival: pa.Table, races: int = 1) -> None:
        super().__init__("int")
        self.rival = rival
        self.races = races
        self.conditional_puts = 0

    def put(self, key: str, data: bytes, **kwargs: Any) -> None:
        if key.startswith(READINGS_PREFIX) and (kwargs.get("if_match") or kwargs.get("if_absent")):
            self.conditional_puts += 1
            if self.races:
                self.races -= 1
                super().put(key, encode_parquet(self.rival))  # the concurrent writer wins the race
                raise ConcurrentUpdate(key)
        super().put(key, data, **kwargs)


def coded_rows(meters: list[str], moment: datetime) -> list[CodedRows]:
    return [CodedRows.from_long(long_rows(meters, moment))]


def long_rows(meters: list[str], moment: datetime) -> pa.Table:
    count = len(meters)
    return pa.table(
        {
            "meter_id": meters,
            "reading_value": [float(i) for i in range(count)],
            "reading_date_time": pa.array([moment] * count, pa.timestamp("us")),
            "unit": ["kW"] * count,
            "obis_code": ["1.0.1.7.0.255"] * count,
            "phase": ["total"] * count,
            "reading_source": ["hes"] * count,
        },
        schema=LONG_SCHEMA,
    )


@pytest.fixture
def partition() -> PartitionKey:
    return PartitionKey.of("kw", datetime(2023, 1, 2, 5))


def test_merge_retries_after_a_concurrent_update(partition: PartitionKey) -> None:
    # GIVEN a concurrent writer that puts meters m0 and m1 into the partition just before we write
    moment = partition.hour_start
    store = RacingStore(rival=long_rows(["m0", "m1"], moment))
    # WHEN we merge m1 and m2
    record = ingest.merge_into_partition(store, partition, coded_rows(["m1", "m2"], moment), "hes", "file:f1")
    # THEN the merge retried against the rival's object and kept both writers' rows
    assert store.conditional_puts == 2
    stored = store.get(partition.object_key)
    assert stored is not None
    assert decode_parquet(stored.data)["meter_id"].to_pylist() == ["m0", "m1", "m2"]
    assert (record.rows_added, record.rows_duplicate) == (1, 1)
    assert stored.metadata["merges"] == "file:f1:1:1"


def test_merge_gives_up_retryably_when_the_partition_keeps_changing(partition: PartitionKey) -> None:
    # GIVEN a partition that changes before every one of our writes
    store = RacingStore(rival=long_rows(["m0"], partition.hour_start), races=100)
    # WHEN we merge THEN the job fails retryably instead of looping forever
    with pytest.raises(RetryableError, match="kept changing"):
        ingest.merge_into_partition(
            store, partition, coded_rows(["m9"], partition.hour_start), "hes", "file:f1"
        )
    assert store.conditional_puts == 8


def test_merge_of_nothing_new_leaves_the_object_alone(partition: PartitionKey) -> None:
    # GIVEN a partition holding rows merged by one file
    store = MemoryLakeStore("int")
    rows = coded_rows(["m1", "m2"], partition.hour_start)
    ingest.merge_into_partition(store, partition, rows, "hes", "file:f1")
    before = store.get(partition.object_key)
    # WHEN another file brings the same rows
    record = ingest.merge_into_partition(store, partition, rows, "hes", "file:f2")
    # THEN it counts them as duplicates and does not rewrite the object (same etag and ledger)
    assert (record.rows_added, record.rows_duplicate) == (0, 2)
    assert store.get(partition.object_key) == before
