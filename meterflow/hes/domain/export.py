"""Bulk readings export (``POST/GET /readings/file``): requests, plans, chunks and file assembly.

The export workflow (``state_machines/hes_export.asl.json``) calls these functions through thin
workers: :func:`plan_export` counts the records exactly and cuts the window into chunks,
:func:`encode_chunk` turns one chunk into a gzip member, and :func:`group_parts` decides how chunk
objects become the parts of one multipart upload (gzip members concatenate into one valid file).

A window selects the reads taken in it (``window_by="time"``, the seed-000 behaviour: counting is
arithmetic) or the reads the head-end received in it (``"arrival_time"``, an incremental pull:
counting hashes the arrivals of the slots near the window's edges, and chunks are blocks of
reading-time slots with their exact counts).
"""

from __future__ import annotations

import json
import math
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
from pydantic import ConfigDict, PlainValidator, ValidationInfo, field_validator, model_validator

from meterflow.core.contracts import Contract, HesTime
from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import format_hes_time, to_epoch_seconds
from meterflow.hes.domain.fleet import ArrivalWindow, Fleet, ReadingBatch, SlotWindow
from meterflow.hes.domain.readings import readings_window

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


class WindowBy(StrEnum):
    """Which timestamp an export window selects on."""

    TIME = "time"  # the reads taken in the window (seed 000)
    ARRIVAL_TIME = "arrival_time"  # the reads the head-end received in it, whatever their time


def parse_window_by(raw: object) -> WindowBy:
    if isinstance(raw, str):
        try:
            return WindowBy(raw)
        except ValueError:
            pass
    allowed = " or ".join(repr(choice.value) for choice in WindowBy)
    raise InvalidInput(f"window_by must be {allowed}, got {str(raw)[:40]!r}", field="window_by")


def parse_request_id(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidInput("request_id is required", field="request_id")
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise InvalidInput(f"request_id must be a UUID, got {raw[:40]!r}", field="request_id") from exc


def _parse_iso(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput("execution_start_time must be an ISO-8601 string", field="execution_start_time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"bad execution_start_time {value!r}", field="execution_start_time") from exc
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


# Field types of the contracts below. Each parser raises InvalidInput naming its field; present
# means validated: an explicit null is as wrong as any other bad value.
ExportMode = Annotated[WindowBy, PlainValidator(parse_window_by)]
RequestId = Annotated[str, PlainValidator(parse_request_id)]
ExecutionTime = Annotated[datetime, PlainValidator(_parse_iso)]


class _Window(Contract):
    """The export window: ``end_date`` after ``start_date``, at most MAX_EXPORT_WINDOW later."""

    start_date: HesTime
    end_date: HesTime
    window_by: ExportMode = WindowBy.TIME

    @field_validator("end_date")
    @classmethod
    def _after_start_and_bounded(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start_date")
        if start is None:
            return end  # start_date failed: that is the error reported
        if end <= start:
            raise InvalidInput("end_date must be after start_date", field="end_date")
        if end - start > MAX_EXPORT_WINDOW:
            raise InvalidInput(
                f"an export window spans at most {MAX_EXPORT_WINDOW.days} days", field="end_date"
            )
        return end


class ExportWindow(_Window):
    """The body of ``POST /readings/file``."""

    @model_validator(mode="before")
    @classmethod
    def _an_object_of_known_fields(cls, body: object) -> object:
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object with start_date and end_date", field="body")
        unknown = sorted(set(body) - set(cls.model_fields))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        # An absent date is refused like a null one, with the format it must have.
        return {"start_date": None, "end_date": None, **body}

    @classmethod
    def from_body(cls, body: object) -> ExportWindow:
        """Validate a ``POST /readings/file`` body (already JSON-decoded)."""
        return cls.parse(body, "export request")


@dataclass(frozen=True)
class FileRequest:
    """One ``POST /readings/file`` request and its lifecycle."""

    request_id: str
    status: ExportStatus
    start_date: datetime
    end_date: datetime
    created_at: datetime
    updated_at: datetime
    window_by: WindowBy = WindowBy.TIME
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
            window_by=window.window_by,
        )

    def status_body(self) -> dict[str, Any]:
        """The seed-000 ``GET /readings/file`` response."""
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status.value,
            "start_date": format_hes_time(self.start_date),
            "end_date": format_hes_time(self.end_date),
            "window_by": self.window_by.value,
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
                "window_by": self.window_by.value,
            }
        )


class ExportSubmission(_Window):
    """The message that asks for an export to start (file-requests queue -> workflow input).

    Messages queued before exports by arrival existed have no ``window_by``: they select by time.
    """

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "malformed file request message"

    request_id: RequestId

    @classmethod
    def from_message(cls, body: str) -> ExportSubmission:
        return cls.parse_json(body)

    def workflow_input(self) -> str:
        return json.dumps(
            {
                "request_id": self.request_id,
                "start_date": format_hes_time(self.start_date),
                "end_date": format_hes_time(self.end_date),
                "window_by": self.window_by.value,
            }
        )


# --------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ChunkSpec:
    """Records ``first_index .. first_index+count-1`` of the file.

    By time they are located arithmetically in the window. By arrival they are the reads of the
    reading-time slots [first_slot, end_slot) that arrived in the window, which the plan counted.
    A dataclass (tests and the planner build it positionally); a chunk job's contract validates it,
    refusing unknown keys like every contract.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    index: int
    first_index: int
    count: int
    first_slot: int | None = None
    end_slot: int | None = None

    def to_state(self) -> dict[str, Any]:
        # Time chunks carry no slots: leave the keys out rather than repeat nulls in the Map's items.
        return {name: value for name, value in asdict(self).items() if value is not None}


class ChunkContext(Contract):
    """What every chunk worker and the finaliser share: the frozen window and where files go.

    By arrival, [first_slot, end_slot) are the candidate reading-time slots and the file holds
    their reads that arrived in [first_arrival_s, end_arrival_s). A context planned before exports
    by arrival existed has no ``window_by``: it selects by time.
    """

    what: ClassVar[str] = "malformed chunk context"

    request_id: str
    first_slot: int
    end_slot: int
    records_per_slot: int
    record_count: int
    staging_prefix: str
    object_key: str
    sftp_location: str
    window_by: ExportMode = WindowBy.TIME
    first_arrival_s: int | None = None
    end_arrival_s: int | None = None

    @classmethod
    def from_state(cls, state: object) -> ChunkContext:
        """The ``chunk_context`` of a plan."""
        return cls.parse(state)

    @property
    def window(self) -> SlotWindow:
        return SlotWindow(self.first_slot, self.end_slot, self.records_per_slot)

    @property
    def arrivals(self) -> ArrivalWindow:
        if self.first_arrival_s is None or self.end_arrival_s is None:
            raise InvalidInput("an export by arrival_time needs its arrival bounds", field="plan")
        return ArrivalWindow(self.first_arrival_s, self.end_arrival_s)

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
            "chunks": [chunk.to_state() for chunk in self.chunks],
            "chunk_context": self.context.model_dump(),
        }


class _PlanPayload(Contract):
    """The plan job's payload: the workflow input and the execution's name and start time.

    Plan jobs sent before exports by arrival existed have no ``window_by``: they select by time.
    """

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "malformed plan job"

    request_id: RequestId
    start_date: HesTime
    end_date: HesTime
    execution_name: str
    execution_start_time: ExecutionTime
    window_by: ExportMode = WindowBy.TIME


@dataclass(frozen=True)
class PlanJob:
    request_id: str
    start_date: datetime
    end_date: datetime
    execution_name: str
    execution_start_time: datetime
    window_by: WindowBy = WindowBy.TIME

    @classmethod
    def from_payload(cls, payload: object) -> PlanJob:
        job = _PlanPayload.parse(payload)
        return cls(
            job.request_id,
            job.start_date,
            job.end_date,
            job.execution_name,
            job.execution_start_time,
            job.window_by,
        )


def plan_export(fleet: Fleet, job: PlanJob, chunk_records: int, max_chunks: int) -> ExportPlan:
    """Count the window's records exactly and cut them into chunks.

    The window is frozen here, at the execution's start time: chunks computed later, or retried,
    see exactly the same records. Chunks grow past ``chunk_records`` only to stay within
    ``max_chunks``, which bounds the Map state's payload.
    """
    if job.window_by is WindowBy.ARRIVAL_TIME:
        return _plan_by_arrival(fleet, job, chunk_records, max_chunks)
    window = readings_window(fleet, job.start_date, job.end_date, job.execution_start_time)
    total = window.record_count
    per_chunk = _records_per_chunk(total, chunk_records, max_chunks)
    chunks = [
        ChunkSpec(index, first, min(per_chunk, total - first))
        for index, first in enumerate(range(0, total, per_chunk))
    ]
    return ExportPlan(_chunk_context(job, window, total), chunks)


def arrival_window(start: datetime, end: datetime, now: datetime) -> ArrivalWindow:
    """Arrivals in [start, end) that are not after ``now``: a read that has not arrived does not exist.

    Arrival times are whole seconds, so the bounds are too: the first second >= start, and the
    first second past both ``end`` and ``now``.
    """
    first = _ceil_seconds(start)
    return ArrivalWindow(first, max(first, min(_ceil_seconds(end), to_epoch_seconds(now) + 1)))


def _plan_by_arrival(fleet: Fleet, job: PlanJob, chunk_records: int, max_chunks: int) -> ExportPlan:
    arrivals = arrival_window(job.start_date, job.end_date, job.execution_start_time)
    first_slot, end_slot = fleet.arrival_candidates(arrivals)
    counts = fleet.received_counts(arrivals, first_slot, end_slot)
    total = int(counts.sum())
    chunks = _slot_chunks(first_slot, counts, _records_per_chunk(total, chunk_records, max_chunks))
    candidates = SlotWindow(first_slot, end_slot, fleet.records_per_slot)
    return ExportPlan(_chunk_context(job, candidates, total, arrivals), chunks)


def _slot_chunks(first_slot: int, counts: npt.NDArray[np.int64], per_chunk: int) -> list[ChunkSpec]:
    """Consecutive blocks of slots, each closed as soon as it holds ``per_chunk`` records.

    Every chunk but the last holds at least ``per_chunk`` records, so there are at most
    ``ceil(total / per_chunk)`` of them; the last also takes the trailing slots that received
    nothing, so the chunks tile the candidate slots.
    """
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1]) if len(cumulative) else 0
    chunks: list[ChunkSpec] = []
    start, done = 0, 0
    while done < total:
        end = min(int(np.searchsorted(cumulative, done + per_chunk, side="left")) + 1, len(counts))
        count = int(cumulative[end - 1]) - done
        if done + count == total:
            end = len(counts)
        chunks.append(ChunkSpec(len(chunks), done, count, first_slot + start, first_slot + end))
        start, done = end, done + count
    return chunks


def _records_per_chunk(total: int, chunk_records: int, max_chunks: int) -> int:
    return max(chunk_records, math.ceil(total / max_chunks)) if total else chunk_records


def _chunk_context(
    job: PlanJob, slots: SlotWindow, record_count: int, arrivals: ArrivalWindow | None = None
) -> ChunkContext:
    epoch_ms = int((job.execution_start_time - datetime(1970, 1, 1)).total_seconds() * 1000)
    sftp_location = f"{job.request_id}/run-{epoch_ms}-part-r-00000.gz"
    return ChunkContext(
        request_id=job.request_id,
        first_slot=slots.first_slot,
        end_slot=slots.end_slot,
        records_per_slot=slots.records_per_slot,
        record_count=record_count,
        staging_prefix=f"{STAGING_PREFIX}{job.request_id}/{job.execution_name}/",
        object_key=f"{EXPORT_PREFIX}{sftp_location}",
        sftp_location=sftp_location,
        window_by=job.window_by,
        first_arrival_s=None if arrivals is None else arrivals.first_arrival_s,
        end_arrival_s=None if arrivals is None else arrivals.end_arrival_s,
    )


def _ceil_seconds(moment: datetime) -> int:
    return to_epoch_seconds(moment) + (1 if moment.microsecond else 0)


class _ChunkPayload(Contract):
    """A chunk job's payload: the plan's chunk context and one of its chunks."""

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "malformed chunk job"

    plan: ChunkContext
    chunk: ChunkSpec


@dataclass(frozen=True)
class ChunkJob:
    context: ChunkContext
    chunk: ChunkSpec

    @classmethod
    def from_payload(cls, payload: object) -> ChunkJob:
        job = _ChunkPayload.parse(payload)
        return cls(job.plan, job.chunk)


class _FinalizePayload(Contract):
    """The finalize job's payload: the plan's chunk context and how many chunks it has."""

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "malformed finalize job"

    plan: ChunkContext
    chunk_count: int


@dataclass(frozen=True)
class FinalizeJob:
    context: ChunkContext
    chunk_count: int

    @classmethod
    def from_payload(cls, payload: object) -> FinalizeJob:
        job = _FinalizePayload.parse(payload)
        return cls(job.plan, job.chunk_count)


def chunk_records(fleet: Fleet, job: ChunkJob) -> ReadingBatch:
    if job.context.records_per_slot != fleet.records_per_slot:
        # The fleet's configuration changed between planning and this chunk: the file would be wrong.
        raise InvalidInput("the fleet configuration changed since the export was planned", field="plan")
    if job.context.window_by is WindowBy.ARRIVAL_TIME:
        # Recomputed from the arrivals, not trusted from the plan: the caller checks the count.
        first_slot, end_slot = job.chunk.first_slot, job.chunk.end_slot
        if first_slot is None or end_slot is None:
            raise InvalidInput(
                f"chunk {job.chunk.index} of an export by arrival_time has no slots", field="chunk"
            )
        return fleet.received_records(job.context.arrivals, first_slot, end_slot)
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
