"""Use cases: one function per thing a user or a workflow asks of the HES."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from meterflow.core.errors import ExportIntegrityError, NotFound
from meterflow.hes.domain.export import (
    ChunkJob,
    ExportStatus,
    ExportSubmission,
    ExportWindow,
    FileRequest,
    FinalizeJob,
    PlanJob,
    chunk_records,
    encode_chunk,
    group_parts,
    gzip_member,
    parse_request_id,
    plan_export,
)
from meterflow.hes.domain.fleet import Fleet
from meterflow.hes.domain.readings import ReadingsQuery, readings_page
from meterflow.hes.ports import (
    ExportWorkflow,
    FileRequestRepository,
    MessageQueue,
    ObjectStore,
    StoredObject,
)

logger = logging.getLogger("meterflow.hes")

Clock = Callable[[], datetime]


def get_readings(fleet: Fleet, params: dict[str, str] | None, clock: Clock) -> dict[str, Any]:
    return readings_page(fleet, ReadingsQuery.from_params(params), clock)


def request_export(
    body: object, requests: FileRequestRepository, queue: MessageQueue, clock: Clock
) -> FileRequest:
    """Accept a file request: record it as queued, then hand it to the file-requests queue."""
    request = FileRequest.new(ExportWindow.from_body(body), clock())
    requests.create(request)
    try:
        queue.send(request.queue_message())
    except Exception as exc:
        # The request was recorded but cannot be processed: say so rather than leave it queued forever.
        requests.fail(request.request_id, f"could not enqueue the request: {exc}")
        raise
    return request


def get_export(raw_request_id: object, requests: FileRequestRepository) -> FileRequest:
    request_id = parse_request_id(raw_request_id)
    request = requests.get(request_id)
    if request is None:
        raise NotFound(f"no file request {request_id}", field="request_id")
    return request


def submit_export(message_body: str, requests: FileRequestRepository, workflow: ExportWorkflow) -> bool:
    """Start the export workflow for a queued request; a redelivered message starts nothing.

    Returns True when this call started the execution.
    """
    submission = ExportSubmission.from_message(message_body)
    if not requests.advance(
        submission.request_id, ExportStatus.SUBMITTED, (ExportStatus.QUEUED, ExportStatus.SUBMITTED)
    ):
        logger.info(
            "file request %s is already past submission; not starting it again", submission.request_id
        )
        return False
    # The execution name is the request id: Step Functions refuses a second execution of one name.
    started = workflow.start(submission.request_id, submission.workflow_input())
    if not started:
        logger.info("export execution for %s already exists (redelivered message)", submission.request_id)
    return started


def plan(payload: dict[str, Any], fleet: Fleet, chunk_records_target: int, max_chunks: int) -> dict[str, Any]:
    return plan_export(fleet, PlanJob.from_payload(payload), chunk_records_target, max_chunks).to_state()


def export_chunk(payload: dict[str, Any], fleet: Fleet, store: ObjectStore) -> dict[str, Any]:
    """Compute one chunk and store it as a gzip member; retries overwrite it with identical bytes."""
    job = ChunkJob.from_payload(payload)
    batch = chunk_records(fleet, job)
    if len(batch) != job.chunk.count:
        raise ExportIntegrityError(
            f"chunk {job.chunk.index} produced {len(batch)} records, planned {job.chunk.count}"
        )
    data = encode_chunk(batch)
    key = job.context.chunk_key(job.chunk.index)
    store.put(key, data, len(batch))
    return {"index": job.chunk.index, "key": key, "record_count": len(batch), "bytes": len(data)}


def finalize_export(payload: dict[str, Any], store: ObjectStore) -> dict[str, Any]:
    """Compose the chunk objects into the export file, refusing to ship a file that does not add up."""
    job = FinalizeJob.from_payload(payload)
    context = job.context
    existing = store.head(context.object_key)
    if existing is not None and existing.record_count == context.record_count:
        # A retry after a successful compose (the worker died before reporting): nothing to redo.
        return _finalized(context.sftp_location, context.record_count, existing.size)
    parts: list[StoredObject] = []
    for index in range(job.chunk_count):
        stored = store.head(context.chunk_key(index))
        if stored is None or stored.record_count is None:
            raise ExportIntegrityError(
                f"chunk {index} of {job.chunk_count} is missing from {context.staging_prefix}"
            )
        parts.append(stored)
    counted = sum(part.record_count or 0 for part in parts)
    if counted != context.record_count:
        raise ExportIntegrityError(f"chunks hold {counted} records, the plan counted {context.record_count}")
    if parts:
        groups = [[parts[i] for i in group] for group in group_parts([part.size for part in parts])]
        size = store.compose(context.object_key, groups, counted)
    else:
        empty = gzip_member(b"")
        store.put(context.object_key, empty, 0)
        size = len(empty)
    store.delete_prefix(context.staging_prefix)
    return _finalized(context.sftp_location, counted, size)


def _finalized(sftp_location: str, record_count: int, size: int) -> dict[str, Any]:
    return {"sftp_location": sftp_location, "record_count": record_count, "bytes": size}
