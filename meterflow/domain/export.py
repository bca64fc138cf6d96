"""Bulk readings export (``POST/GET /readings/file``): requests, plans, chunks and file assembly.

The export workflow (``state_machines/hes_export.asl.json``) calls these functions through thin
workers: :func:`plan_export` counts the records arithmetically and cuts the window into chunks,
:func:`encode_chunk` turns one chunk into a gzip member, and :func:`group_parts` decides how chunk
objects become the parts of one multipart upload (gzip members concatenate into one valid file).
"""

from __future__ import annotations

import json
import math
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from meterflow.domain.errors import InvalidInput
from meterflow.domain.fleet import Fleet, ReadingBatch, SlotWindow
from meterflow.domain.readings import readings_window
from meterflow.domain.timeutil import format_hes_time, parse_hes_time

MAX_EXPORT_WINDOW = timedelta(days=366)
S3_MIN_PART_BYTES = 5 * 1024 * 1024
# Level 1 compresses ~5x faster than the default 6 for ~25 % larger files: exports are I/O-bound
# downstream, and the file is read once.
GZIP_LEVEL = 1
EXPORT_PREFIX = "exports/"
STAGING_PREFIX = "staging/"
# A finished request's row is kept this long (DynamoDB TTL), like the exported file's lifecycle.
REQUEST_RETENTION = timedelta(days=30)


class ExportStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class ExportWindow:
    start_date: datetime
    end_date: datetime

    @classmethod
    def from_body(cls, body: object) -> ExportWindow:
        """Validate a ``POST /readings/file`` body (already JSON-decoded)."""
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object with start_date and end_date", field="body")
        unknown = sorted(set(body) - {"start_date", "end_date"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        start = parse_hes_time(body.get("start_date"), "start_date")
        end = parse_hes_time(body.get("end_date"), "end_date")
        if end <= start:
            raise InvalidInput("end_date must be after start_date", field="end_date")
        if end - start > MAX_EXPORT_WINDOW:
            raise InvalidInput(
                f"an export window spans at most {MAX_EXPORT_WINDOW.days} days", field="end_date"
            )
        return cls(start, end)


@dataclass(frozen=True)
class FileRequest:
    """One ``POST /readings/file`` request and its lifecycle."""

    request_id: str
    status: ExportStatus
    start_date: datetime
    end_date: datetime
    created_at: datetime
    updated_at: datetime
    sftp_location: str | None = None
    record_count: int | None = None
    failure_reason: str | None = None

    @classmethod
    def new(cls, window: ExportWindow, now: datetime, request_id: str | None = None) -> FileRequest:
        return cls(
            request_id=request_id or str(uuid.uuid4()),
            status=ExportStatus.QUEUED,
            start_date=window.start_date,
            end_date=window.end_date,
            created_at=now,
            updated_at=now,
        )

    def status_body(self) -> dict[str, Any]:
        """The seed-000 ``GET /readings/file`` response."""
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status.value,
            "start_date": format_hes_time(self.start_date),
            "end_date": format_hes_time(self.end_date),
        }
        if self.status is ExportStatus.COMPLETED:
            body["sftp_location"] = self.sftp_location
            body["record_count"] = self.record_count
        if self.status is ExportStatus.FAILED:
            body["failure_reason"] = self.failure_reason
        return body

    def queue_message(self) -> str:
        return json.dumps(
            {
                "request_id": self.request_id,
                "start_date": format_hes_time(self.start_date),
                "end_date": format_hes_time(self.end_date),
            }
        )


def parse_request_id(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidInput("request_id is required", field="request_id")
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise InvalidInput(f"request_id must be a UUID, got {raw[:40]!r}", field="request_id") from exc


@dataclass(frozen=True)
class ExportSubmission:
    """The message that asks for an export to start (file-requests queue -> workflow input)."""

    request_id: str
    start_date: str
    end_date: str

    @classmethod
    def from_message(cls, body: str) -> ExportSubmission:
        try:
            data = json.loads(body)
            request_id = parse_request_id(data["request_id"])
            window = ExportWindow.from_body({"start_date": data["start_date"], "end_date": data["end_date"]})
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed file request message: {exc}", field="message") from exc
        return cls(request_id, format_hes_time(window.start_date), format_hes_time(window.end_date))

    def workflow_input(self) -> str:
        return json.dumps(asdict(self))


# --------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ChunkSpec:
    index: int
    first_index: int
    count: int


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk worker and the finaliser share: the frozen window and where files go."""

    request_id: str
    first_slot: int
    end_slot: int
    records_per_slot: int
    record_count: int
    staging_prefix: str
    object_key: str
    sftp_location: str

    @property
    def window(self) -> SlotWindow:
        return SlotWindow(self.first_slot, self.end_slot, self.records_per_slot)

    def chunk_key(self, index: int) -> str:
        return f"{self.staging_prefix}chunk-{index:06d}.csv.gz"


@dataclass(frozen=True)
class ExportPlan:
    context: ChunkContext
    chunks: list[ChunkSpec] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return {
            "record_count": self.context.record_count,
            "chunk_count": len(self.chunks),
            "chunks": [asdict(chunk) for chunk in self.chunks],
            "chunk_context": asdict(self.context),
        }


@dataclass(frozen=True)
class PlanJob:
    request_id: str
    start_date: datetime
    end_date: datetime
    execution_name: str
    execution_start_time: datetime

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PlanJob:
        try:
            return cls(
                request_id=parse_request_id(payload["request_id"]),
                start_date=parse_hes_time(payload["start_date"], "start_date"),
                end_date=parse_hes_time(payload["end_date"], "end_date"),
                execution_name=str(payload["execution_name"]),
                execution_start_time=_parse_iso(payload["execution_start_time"]),
            )
        except KeyError as exc:
            raise InvalidInput(f"plan job lacks {exc}", field=str(exc)) from exc


def _parse_iso(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput("execution_start_time must be an ISO-8601 string", field="execution_start_time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"bad execution_start_time {value!r}", field="execution_start_time") from exc
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


def plan_export(fleet: Fleet, job: PlanJob, chunk_records: int, max_chunks: int) -> ExportPlan:
    """Count the window's records (arithmetic, no scan) and cut them into chunks.

    The window is frozen here, at the execution's start time: chunks computed later, or retried,
    see exactly the same records. Chunks grow past ``chunk_records`` only to stay within
    ``max_chunks``, which bounds the Map state's payload.
    """
    window = readings_window(fleet, job.start_date, job.end_date, job.execution_start_time)
    total = window.record_count
    per_chunk = max(chunk_records, math.ceil(total / max_chunks)) if total else chunk_records
    chunks = [
        ChunkSpec(index, first, min(per_chunk, total - first))
        for index, first in enumerate(range(0, total, per_chunk))
    ]
    epoch_ms = int((job.execution_start_time - datetime(1970, 1, 1)).total_seconds() * 1000)
    sftp_location = f"{job.request_id}/run-{epoch_ms}-part-r-00000.gz"
    context = ChunkContext(
        request_id=job.request_id,
        first_slot=window.first_slot,
        end_slot=window.end_slot,
        records_per_slot=window.records_per_slot,
        record_count=total,
        staging_prefix=f"{STAGING_PREFIX}{job.request_id}/{job.execution_name}/",
        object_key=f"{EXPORT_PREFIX}{sftp_location}",
        sftp_location=sftp_location,
    )
    return ExportPlan(context, chunks)


@dataclass(frozen=True)
class ChunkJob:
    context: ChunkContext
    chunk: ChunkSpec

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ChunkJob:
        try:
            return cls(ChunkContext(**payload["plan"]), ChunkSpec(**payload["chunk"]))
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed chunk job: {exc}", field="payload") from exc


@dataclass(frozen=True)
class FinalizeJob:
    context: ChunkContext
    chunk_count: int

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> FinalizeJob:
        try:
            return cls(ChunkContext(**payload["plan"]), int(payload["chunk_count"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed finalize job: {exc}", field="payload") from exc


def chunk_records(fleet: Fleet, job: ChunkJob) -> ReadingBatch:
    if job.context.records_per_slot != fleet.records_per_slot:
        # The fleet's configuration changed between planning and this chunk: the file would be wrong.
        raise InvalidInput("the fleet configuration changed since the export was planned", field="plan")
    return fleet.records(job.context.window, job.chunk.first_index, job.chunk.count)


def encode_csv(batch: ReadingBatch) -> bytes:
    """Headerless CSV in the inbound (wide) column order: one line per record."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(batch.to_arrow(), sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    return bytes(sink.getvalue().to_pybytes())


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
    return compressor.compress(data) + compressor.flush()


def encode_chunk(batch: ReadingBatch) -> bytes:
    return gzip_member(encode_csv(batch))


def group_parts(sizes: list[int], min_part_bytes: int = S3_MIN_PART_BYTES) -> list[list[int]]:
    """Group consecutive chunk objects into multipart-upload parts.

    Every part but the last must reach ``min_part_bytes`` (S3's 5 MiB rule). Chunks are kept in
    order, so the concatenated parts reproduce the chunks' order exactly.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, size in enumerate(sizes):
        current.append(index)
        current_bytes += size
        if current_bytes >= min_part_bytes:
            groups.append(current)
            current, current_bytes = [], 0
    if current:
        groups.append(current)  # the last part may be smaller than the minimum
    return groups
