"""Ingesting one inbound file into the integrated zone: the jobs of the lake-ingest workflow.

split_file -> stage_range (per range) -> plan_compaction -> compact_partitions (per group)
-> finalize_file, plus merge_late_reads, the consumer of the late-read events. Every job is
idempotent: its outputs live under keys derived from (file, range or group), partition merges are
recorded in a ledger on the partition object, so a retried or redelivered job changes nothing.

Accounting, in long rows (``rows_per_line`` = 6 for a HES line, 1 for a London line)::

    lines_read  = lines_valid + lines_quarantined
    rows_staged = lines_valid * rows_per_line
                = rows_written + rows_duplicate + rows_late_staged

Staging: each range writes one object of on-time rows and one of late rows, each the range's
meter dictionary followed by per-partition Arrow streams (meter-coded, see
:mod:`~meterflow.lake.domain.partitions`) hour by hour, with an index in the range's result, so a
merge reads a run of partitions with two ranged GETs. A partition is late when its hour ended more
than the threshold before the ingestion window (the integration window the file answers) began:
it was closed before this file arrived. Late partitions are announced by finalize_file, a group
per event, and merged by the late-read consumer, which writes a record per group
(``manifests/<file_id>/late/group-NNNNN.json``: rows_added + rows_duplicate = rows_staged).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ConfigDict

from meterflow.core.contracts import Contract
from meterflow.core.errors import IntegrityError, RetryableError
from meterflow.core.timeutil import parse_hes_time
from meterflow.lake.domain.hes_format import parse_hes_range
from meterflow.lake.domain.parsing import ParsedRange, QuarantinedLine
from meterflow.lake.domain.partitions import (
    CodedRows,
    decode_meters,
    decode_parquet,
    decode_piece,
    encode_parquet,
    encode_staged,
    merge_rows,
    partition_order,
    reading_type_named,
    split_by_partition,
)
from meterflow.lake.domain.ranges import ByteRange, RangeTuning, split_ranges
from meterflow.lake.domain.schema import LATE_READS_DETAIL_TYPE, TOPOLOGY_PREFIX, PartitionKey
from meterflow.lake.ports import ConcurrentUpdate, EventPublisher, LakeStore

logger = logging.getLogger("meterflow.lake")

FileFormat = Literal["hes_wide", "london_lcl"]
ROWS_PER_LINE: dict[str, int] = {"hes_wide": 6, "london_lcl": 1}
METER_REGISTRY_KEY = f"{TOPOLOGY_PREFIX}/meters/data.parquet"
_LEDGER_METADATA = "merges"
_LEDGER_ENTRIES = 16  # S3 user metadata is limited to 2 KB
_MERGE_ATTEMPTS = 8


class IngestRequest(Contract):
    """The lake-ingest workflow's input, from the S3 event of an object under ``uncompressed/``."""

    file_id: str
    bucket: str
    key: str
    file_format: FileFormat
    reading_source: str
    window_start: str = ""  # the integration window the file answers, if any (ISO, UTC)
    window_end: str = ""
    arrive_time: str  # when the object landed (ISO, UTC)


class FileRef(IngestRequest):
    """What every job of one ingestion shares (the split job adds size and the lateness rule)."""

    size: int
    late_threshold_minutes: int
    integrated_bucket: str

    def staging(self, *parts: str) -> str:
        return "/".join(("staging", self.file_id, *parts))

    @property
    def manifest_key(self) -> str:
        return f"manifests/{self.file_id}.json"

    @property
    def quarantine_key(self) -> str:
        return f"errors/{self.file_id}/quarantined.csv"

    @property
    def rows_per_line(self) -> int:
        return ROWS_PER_LINE[self.file_format]


class RangeJob(Contract):
    file: FileRef
    range: dict[str, int]

    @property
    def byte_range(self) -> ByteRange:
        return ByteRange(self.range["index"], self.range["start"], self.range["end"])


class PlanCompactionJob(Contract):
    file: FileRef
    range_count: int


class StagedPiece(Contract):
    partition: str
    offset: int
    length: int
    rows: int


class StagedSpan(Contract):
    """The pieces one range staged for a run of consecutive partitions: one ranged GET reads them,
    another the range's meter dictionary."""

    range_index: int
    meters_start: int
    meters_end: int
    start: int
    end: int
    pieces: list[StagedPiece]


class CompactionGroup(Contract):
    index: int
    partitions: list[str]
    sources: list[StagedSpan]


class CompactJob(Contract):
    file: FileRef
    group: CompactionGroup


class FinalizeJob(Contract):
    file: FileRef
    range_count: int
    group_count: int


class LateReadsEvent(Contract):
    """One group of a file's late partitions, announced once the file's on-time rows are merged."""

    file_id: str
    bucket: str
    reading_source: str
    group_index: int
    partitions: list[str]
    sources: list[StagedSpan]  # where the ranges' late objects hold rows for these partitions
    rows: int


@dataclass(frozen=True)
class LakeTuningSettings:
    ranges: RangeTuning = field(default_factory=RangeTuning)
    late_threshold_minutes: int = 60
    partitions_per_group: int = 24


def _range_name(index: int) -> str:
    return f"range-{index:05d}"


def _staged_key(file_id: str, kind: Literal["ontime", "late"], range_index: int) -> str:
    return f"staging/{file_id}/{kind}/{_range_name(range_index)}.arrow"


def _spans(partitions: list[str], staged: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For each range, the contiguous byte span of its pieces of ``partitions`` and its dictionary."""
    wanted = set(partitions)
    spans = []
    for range_index, index in sorted(staged.items()):
        pieces = [piece for piece in index["pieces"] if piece["partition"] in wanted]
        if pieces:
            meters = index["meters"]
            spans.append(
                {
                    "range_index": range_index,
                    "meters_start": meters["offset"],
                    "meters_end": meters["offset"] + meters["length"],
                    "start": min(piece["offset"] for piece in pieces),
                    "end": max(piece["offset"] + piece["length"] for piece in pieces),
                    "pieces": pieces,
                }
            )
    return spans


def _read_exactly(integrated: LakeStore, key: str, start: int, end: int) -> bytes:
    data = integrated.read_range(key, start, end)
    if len(data) != end - start:
        raise RetryableError(f"staged object {key} is missing or short")
    return data


def _read_spans(
    integrated: LakeStore, file_id: str, kind: Literal["ontime", "late"], spans: list[StagedSpan]
) -> dict[str, list[CodedRows]]:
    """The staged rows of each partition, in range order: two ranged GETs per span."""
    staged: dict[str, list[CodedRows]] = {}
    for span in sorted(spans, key=lambda item: item.range_index):
        key = _staged_key(file_id, kind, span.range_index)
        meters = decode_meters(_read_exactly(integrated, key, span.meters_start, span.meters_end))
        view = memoryview(_read_exactly(integrated, key, span.start, span.end))
        for piece in span.pieces:
            first = piece.offset - span.start
            rows = decode_piece(view[first : first + piece.length])
            if rows.num_rows != piece.rows:
                raise IntegrityError(
                    f"{key} holds {rows.num_rows} rows for {piece.partition}, not {piece.rows}"
                )
            staged.setdefault(piece.partition, []).append(CodedRows(meters, rows))
    return staged


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _load_json(store: LakeStore, key: str) -> dict[str, Any] | None:
    found = store.get(key)
    return None if found is None else dict(json.loads(found.data))


def _ordered_tokens(tokens: Iterable[str]) -> list[str]:
    """Partition tokens in staging order (hour by hour): consecutive ones share ranges."""
    return [key.to_token() for key in partition_order([PartitionKey.from_token(token) for token in tokens])]


# ------------------------------------------------------------------------------------------- split
def split_file(
    payload: Mapping[str, Any], inbound: LakeStore, integrated_bucket: str, tuning: LakeTuningSettings
) -> dict[str, Any]:
    request = IngestRequest.parse(payload)
    info = inbound.head(request.key)
    if info is None:
        raise RetryableError(f"s3://{inbound.bucket}/{request.key} does not exist (yet)")
    ranges = split_ranges(
        info.size,
        lambda offset, length: inbound.read_range(request.key, offset, offset + length),
        tuning.ranges,
    )
    file = FileRef(
        **request.model_dump(),
        size=info.size,
        late_threshold_minutes=tuning.late_threshold_minutes,
        integrated_bucket=integrated_bucket,
    )
    return {"file": file.model_dump(), "ranges": [byte_range.to_state() for byte_range in ranges]}


# ------------------------------------------------------------------------------------------- stage
def load_meter_registry(integrated: LakeStore) -> pa.Array:
    """The meter ids the topology dataflow published: a HES line from any other meter is quarantined."""
    found = integrated.get(METER_REGISTRY_KEY)
    if found is None:
        raise RetryableError(
            f"the meter registry s3://{integrated.bucket}/{METER_REGISTRY_KEY} is missing: "
            "run the topology dataflow first"
        )
    return pq.read_table(pa.py_buffer(found.data), columns=["meter_id"])["meter_id"].combine_chunks()


def _parse(file: FileRef, data: bytes, registry: Callable[[], pa.Array]) -> ParsedRange:
    if file.file_format == "hes_wide":
        return parse_hes_range(data, registry())
    from meterflow.lake.domain.london import parse_london_lcl

    return parse_london_lcl(data, 1)


def is_late(partition: PartitionKey, file: FileRef) -> bool:
    """Whether a partition is older than the ingestion window by more than the threshold.

    The ingestion window is the integration window the file answers: a partition whose hour ended
    more than ``late_threshold_minutes`` before the window started was closed before this file
    arrived, so its reads are late and go through the late-read path. A file without a window (a
    backfill) has no late partitions.
    """
    if not file.window_start:
        return False
    window_start = parse_hes_time(file.window_start, "window_start")
    hour_end = partition.hour_start + timedelta(hours=1)
    return window_start - hour_end > timedelta(minutes=file.late_threshold_minutes)


def _stage(
    integrated: LakeStore,
    key: str,
    meters: pa.Array,
    parts: dict[PartitionKey, pa.Table],
) -> dict[str, Any]:
    if not parts:
        return {"meters": None, "pieces": []}
    staged = encode_staged(meters, parts)
    integrated.put(key, staged.data)
    return {"meters": staged.meters, "pieces": staged.pieces}


def stage_range(
    payload: Mapping[str, Any],
    inbound: LakeStore,
    integrated: LakeStore,
    registry: Callable[[], pa.Array],
) -> dict[str, Any]:
    """Parse one range, quarantine bad lines, stage on-time partitions and late partitions apart.

    Late rows are announced once per file (by :func:`finalize_file`), so each late partition is
    rewritten once per file, not once per range.
    """
    job = RangeJob.parse(payload)
    file, byte_range = job.file, job.byte_range
    data = inbound.read_range(file.key, byte_range.start, byte_range.end)
    if len(data) != byte_range.end - byte_range.start:
        raise RetryableError(f"short read of {file.key} [{byte_range.start}, {byte_range.end})")
    parsed = _parse(file, data, registry)
    name = _range_name(byte_range.index)

    meters, parts = split_by_partition(parsed.rows)
    late = {key for key in parts if is_late(key, file)}
    on_time = _stage(
        integrated,
        _staged_key(file.file_id, "ontime", byte_range.index),
        meters,
        {key: rows for key, rows in parts.items() if key not in late},
    )
    late_staged = _stage(
        integrated,
        _staged_key(file.file_id, "late", byte_range.index),
        meters,
        {key: rows for key, rows in parts.items() if key in late},
    )
    if parsed.quarantined:
        integrated.put(
            file.staging("quarantine", f"{name}.json"),
            _json(
                {"lines": [[line.line_number, line.reason.value, line.line] for line in parsed.quarantined]}
            ),
        )
    result = {
        "range_index": byte_range.index,
        "lines_in_range": data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1),
        "lines_read": parsed.lines_read,
        "lines_valid": parsed.lines_valid,
        "lines_quarantined": len(parsed.quarantined),
        "quarantined_by_reason": _count_reasons(parsed.quarantined),
        "rows_staged": parsed.rows.num_rows,
        "rows_late_staged": sum(int(piece["rows"]) for piece in late_staged["pieces"]),
        "ontime": on_time,
        "late": late_staged,
    }
    integrated.put(file.staging("ranges", f"{name}.json"), _json(result))
    return {"range_index": byte_range.index, "lines_read": parsed.lines_read}


def _count_reasons(lines: Iterable[QuarantinedLine]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line.reason.value] = counts.get(line.reason.value, 0) + 1
    return dict(sorted(counts.items()))


def _range_results(file: FileRef, integrated: LakeStore, range_count: int) -> list[dict[str, Any]]:
    return _load_results(
        integrated,
        [file.staging("ranges", f"{_range_name(index)}.json") for index in range(range_count)],
        lambda index: f"range {index} of {file.file_id} has no result: it was never staged",
    )


def _load_results(
    integrated: LakeStore, keys: list[str], missing: Callable[[int], str]
) -> list[dict[str, Any]]:
    """The JSON record at each of ``keys``; an absent one is an IntegrityError saying ``missing(index)``."""
    results = []
    for index, key in enumerate(keys):
        found = _load_json(integrated, key)
        if found is None:
            raise IntegrityError(missing(index))
        results.append(found)
    return results


# ------------------------------------------------------------------------------------------ compact
def plan_compaction(
    payload: Mapping[str, Any], integrated: LakeStore, tuning: LakeTuningSettings
) -> dict[str, Any]:
    job = PlanCompactionJob.parse(payload)
    indexes = {
        int(result["range_index"]): result["ontime"]
        for result in _range_results(job.file, integrated, job.range_count)
    }
    partitions = _ordered_tokens(
        {piece["partition"] for index in indexes.values() for piece in index["pieces"]}
    )
    size = tuning.partitions_per_group
    groups = [
        {"index": index, "partitions": group, "sources": _spans(group, indexes)}
        for index, group in enumerate(
            partitions[start : start + size] for start in range(0, len(partitions), size)
        )
    ]
    return {"groups": groups, "partition_count": len(partitions)}


@dataclass(frozen=True)
class MergeRecord:
    ledger_id: str
    rows_added: int
    rows_duplicate: int


def _read_ledger(metadata: Mapping[str, str]) -> list[MergeRecord]:
    raw = metadata.get(_LEDGER_METADATA, "")
    records = []
    for entry in filter(None, raw.split(" ")):
        ledger_id, added, duplicate = entry.rsplit(":", 2)
        records.append(MergeRecord(ledger_id, int(added), int(duplicate)))
    return records


def _ledger_metadata(entries: list[MergeRecord]) -> dict[str, str]:
    return {_LEDGER_METADATA: " ".join(f"{r.ledger_id}:{r.rows_added}:{r.rows_duplicate}" for r in entries)}


def merge_into_partition(
    integrated: LakeStore,
    partition: PartitionKey,
    incoming: list[CodedRows],
    reading_source: str,
    ledger_id: str,
    expect_new: bool = False,
) -> MergeRecord:
    """Atomically rewrite one partition with ``incoming`` merged in (optimistic concurrency).

    The partition object's metadata keeps a short ledger of the merges applied to it, so a merge
    that is retried after it succeeded reports its original counts instead of "all duplicates".
    With ``expect_new`` (fresh data), the partition is first created without reading it; if it
    already exists, the conditional PUT fails and the merge proceeds as usual.
    """
    reading_type = reading_type_named(partition.reading_type)
    if expect_new:
        outcome = merge_rows(None, incoming, reading_type, reading_source)
        record = MergeRecord(ledger_id, outcome.rows_added, outcome.rows_duplicate)
        try:
            integrated.put(
                partition.object_key,
                encode_parquet(outcome.table),
                if_absent=True,
                metadata=_ledger_metadata([record]),
            )
        except ConcurrentUpdate:
            pass
        else:
            return record
    for _attempt in range(_MERGE_ATTEMPTS):
        current = integrated.get(partition.object_key)
        ledger = _read_ledger(current.metadata) if current is not None else []
        applied = next((record for record in ledger if record.ledger_id == ledger_id), None)
        if applied is not None:
            return applied
        outcome = merge_rows(
            decode_parquet(current.data) if current is not None else None,
            incoming,
            reading_type,
            reading_source,
        )
        record = MergeRecord(ledger_id, outcome.rows_added, outcome.rows_duplicate)
        if outcome.rows_added == 0 and current is not None:
            return record  # nothing new: leave the object (and its bytes) alone
        metadata = _ledger_metadata([*ledger, record][-_LEDGER_ENTRIES:])
        try:
            integrated.put(
                partition.object_key,
                encode_parquet(outcome.table),
                if_match=current.etag if current is not None else None,
                if_absent=current is None,
                metadata=metadata,
            )
        except ConcurrentUpdate:
            logger.info("partition %s changed under merge %s; merging again", partition.prefix, ledger_id)
            continue
        return record
    raise RetryableError(f"partition {partition.prefix} kept changing during merge {ledger_id}")


def compact_partitions(payload: Mapping[str, Any], integrated: LakeStore) -> dict[str, Any]:
    """Merge this file's staged rows into each partition of the group."""
    job = CompactJob.parse(payload)
    file = job.file
    outcomes = []
    staged = _read_spans(integrated, file.file_id, "ontime", job.group.sources)
    for token in job.group.partitions:
        partition = PartitionKey.from_token(token)
        if token not in staged:
            raise IntegrityError(f"partition {token} of {file.file_id} has no staged rows")
        record = merge_into_partition(
            integrated,
            partition,
            staged[token],
            file.reading_source,
            f"file:{file.file_id}",
            expect_new=True,
        )
        outcomes.append(
            {"partition": token, "rows_added": record.rows_added, "rows_duplicate": record.rows_duplicate}
        )
    result = {"group_index": job.group.index, "partitions": outcomes}
    integrated.put(file.staging("compaction", f"group-{job.group.index:05d}.json"), _json(result))
    return {"group_index": job.group.index, "partitions": len(outcomes)}


# ----------------------------------------------------------------------------------------- finalize
def finalize_file(
    payload: Mapping[str, Any],
    integrated: LakeStore,
    events: EventPublisher,
    now: datetime,
    late_partitions_per_event: int = 24,
) -> dict[str, Any]:
    """Write the manifest (and the file's quarantine) once every count adds up, then announce the
    file's late reads on EventBridge, a group of partitions per event."""
    job = FinalizeJob.parse(payload)
    file = job.file
    ranges = _range_results(file, integrated, job.range_count)
    merged = [
        partition
        for group in _compaction_results(file, integrated, job.group_count)
        for partition in group["partitions"]
    ]
    totals = _range_totals(ranges)
    rows_written = sum(int(p["rows_added"]) for p in merged)
    rows_duplicate = sum(int(p["rows_duplicate"]) for p in merged)
    checks = _manifest_checks(totals, rows_written, rows_duplicate, file.rows_per_line)
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise IntegrityError(f"manifest of {file.file_id} does not add up: {failed}; totals {totals}")

    quarantine_key = _write_quarantine(file, integrated, ranges) if totals["lines_quarantined"] else None
    late_indexes = {int(result["range_index"]): result["late"] for result in ranges}
    late_rows = _late_rows_by_partition(late_indexes)
    late_events = _late_events(file, integrated.bucket, late_indexes, late_rows, late_partitions_per_event)
    manifest = {
        "file_id": file.file_id,
        "source": {"bucket": file.bucket, "key": file.key, "size_bytes": file.size},
        "file_format": file.file_format,
        "reading_source": file.reading_source,
        "window": {"start": file.window_start, "end": file.window_end},
        "arrive_time": file.arrive_time,
        "late_threshold_minutes": file.late_threshold_minutes,
        "range_count": job.range_count,
        "rows_per_line": file.rows_per_line,
        **totals,
        "quarantined_by_reason": _quarantined_by_reason(ranges),
        "rows_written": rows_written,
        "rows_duplicate": rows_duplicate,
        "lines_written": rows_written / file.rows_per_line,
        "lines_duplicate": rows_duplicate / file.rows_per_line,
        "lines_late_staged": totals["rows_late_staged"] / file.rows_per_line,
        "partitions_merged": len(merged),
        "late_partitions": sorted(late_rows),
        # the late-read consumer writes manifests/<file_id>/late/group-NNNNN.json for each group
        "late_groups": len(late_events),
        "quarantine_key": quarantine_key,
        "checks": checks,
        "finalized_at": now.isoformat(),
    }
    integrated.put(file.manifest_key, _json(manifest), content_type="application/json")
    # a retried finalize announces again: the consumer's per-group record makes that harmless
    for event in late_events:
        events.publish(LATE_READS_DETAIL_TYPE, event.model_dump())
    _delete_ontime_staging(file, integrated, ranges)
    return {
        "manifest_key": file.manifest_key,
        "lines_read": totals["lines_read"],
        "lines_quarantined": totals["lines_quarantined"],
        "rows_written": rows_written,
        "rows_duplicate": rows_duplicate,
        "rows_late_staged": totals["rows_late_staged"],
    }


def _compaction_results(file: FileRef, integrated: LakeStore, group_count: int) -> list[dict[str, Any]]:
    """What compact_partitions recorded for each group; every group must have a record."""
    return _load_results(
        integrated,
        [file.staging("compaction", f"group-{index:05d}.json") for index in range(group_count)],
        lambda index: f"compaction group {index} of {file.file_id} has no result",
    )


def _range_totals(ranges: list[dict[str, Any]]) -> dict[str, int]:
    return {
        name: sum(int(result[name]) for result in ranges)
        for name in ("lines_read", "lines_valid", "lines_quarantined", "rows_staged", "rows_late_staged")
    }


def _quarantined_by_reason(ranges: list[dict[str, Any]]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for result in ranges:
        for reason, count in result["quarantined_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + int(count)
    return dict(sorted(reasons.items()))


def _manifest_checks(
    totals: Mapping[str, int], rows_written: int, rows_duplicate: int, rows_per_line: int
) -> dict[str, bool]:
    """The accounting identities of the module docstring, each by name."""
    return {
        "lines_read = lines_valid + lines_quarantined": totals["lines_read"]
        == totals["lines_valid"] + totals["lines_quarantined"],
        "rows_staged = lines_valid x rows_per_line": totals["rows_staged"]
        == totals["lines_valid"] * rows_per_line,
        "rows_staged = rows_written + rows_duplicate + rows_late_staged": totals["rows_staged"]
        == rows_written + rows_duplicate + totals["rows_late_staged"],
    }


def _late_rows_by_partition(late_indexes: Mapping[int, Mapping[str, Any]]) -> dict[str, int]:
    """The late rows every range staged, summed per partition token."""
    rows: dict[str, int] = {}
    for index in late_indexes.values():
        for piece in index["pieces"]:
            rows[piece["partition"]] = rows.get(piece["partition"], 0) + int(piece["rows"])
    return rows


def _late_events(
    file: FileRef,
    bucket: str,
    late_indexes: Mapping[int, Mapping[str, Any]],
    late_rows: Mapping[str, int],
    partitions_per_event: int,
) -> list[LateReadsEvent]:
    """The file's late partitions in order, ``partitions_per_event`` to an event."""
    tokens = _ordered_tokens(late_rows)
    groups = (
        tokens[start : start + partitions_per_event] for start in range(0, len(tokens), partitions_per_event)
    )
    return [
        LateReadsEvent.parse(
            {
                "file_id": file.file_id,
                "bucket": bucket,
                "reading_source": file.reading_source,
                "group_index": index,
                "partitions": group,
                "sources": _spans(group, late_indexes),
                "rows": sum(late_rows[token] for token in group),
            }
        )
        for index, group in enumerate(groups)
    ]


def _delete_ontime_staging(file: FileRef, integrated: LakeStore, ranges: list[dict[str, Any]]) -> None:
    """The ranges' on-time staged objects, all merged now (late ones wait for their consumer)."""
    integrated.delete(
        [
            _staged_key(file.file_id, "ontime", int(result["range_index"]))
            for result in ranges
            if result["ontime"]["pieces"]
        ]
    )


def _write_quarantine(file: FileRef, integrated: LakeStore, ranges: list[dict[str, Any]]) -> str:
    """One CSV per file with each bad line's number in the whole file, its reason and its text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line_number", "reason", "line"])
    lines_before = 0
    for result in sorted(ranges, key=lambda r: int(r["range_index"])):
        if result["lines_quarantined"]:
            found = _load_json(
                integrated, file.staging("quarantine", f"{_range_name(int(result['range_index']))}.json")
            )
            if found is None:
                raise IntegrityError(
                    f"quarantine of range {result['range_index']} of {file.file_id} is missing"
                )
            for number, reason, text in found["lines"]:
                writer.writerow([lines_before + int(number), reason, text])
        lines_before += int(result["lines_in_range"])
    integrated.put(file.quarantine_key, out.getvalue().encode(), content_type="text/csv")
    return file.quarantine_key


# -------------------------------------------------------------------------------------- late reads
class _EventBridgeDelivery(Contract):
    """An EventBridge event as its target queue receives it; only its detail matters here."""

    model_config = ConfigDict(extra="ignore")

    detail: dict[str, Any]


def late_reads_detail(body: str) -> dict[str, Any]:
    """The detail of an EventBridge event delivered to the late-read queue."""
    return _EventBridgeDelivery.parse_json(body, "late-read message").detail


def merge_late_reads(detail: Mapping[str, Any], integrated: LakeStore) -> dict[str, Any]:
    """The consumer of a LateReadsStaged event: merge the group's late rows into their true partitions."""
    event = LateReadsEvent.parse(detail)
    record_key = f"manifests/{event.file_id}/late/group-{event.group_index:05d}.json"
    done = _load_json(integrated, record_key)
    if done is not None:
        return done  # a redelivered event
    staged = _read_spans(integrated, event.file_id, "late", event.sources)
    staged_rows = sum(piece.num_rows for pieces in staged.values() for piece in pieces)
    if staged_rows != event.rows or set(staged) != set(event.partitions):
        raise IntegrityError(
            f"late reads of {event.file_id} group {event.group_index}: staged objects hold {staged_rows} "
            f"rows in {len(staged)} partitions, the event announced {event.rows} in {len(event.partitions)}"
        )
    outcomes: list[dict[str, Any]] = []
    for token in _ordered_tokens(staged):
        partition = PartitionKey.from_token(token)
        record = merge_into_partition(
            integrated, partition, staged[token], event.reading_source, f"late:{event.file_id}"
        )
        outcomes.append(
            {
                "partition": partition.to_token(),
                "rows_added": record.rows_added,
                "rows_duplicate": record.rows_duplicate,
            }
        )
    rows_added = sum(int(o["rows_added"]) for o in outcomes)
    rows_duplicate = sum(int(o["rows_duplicate"]) for o in outcomes)
    result: dict[str, Any] = {
        "file_id": event.file_id,
        "group_index": event.group_index,
        "rows_staged": staged_rows,
        "rows_added": rows_added,
        "rows_duplicate": rows_duplicate,
        "partitions": outcomes,
    }
    if rows_added + rows_duplicate != staged_rows:
        raise IntegrityError(
            f"late merge of {event.file_id} group {event.group_index} does not add up: {result}"
        )
    integrated.put(record_key, _json(result), content_type="application/json")
    return result
