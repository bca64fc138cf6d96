"""The on-premises bridge, cloud side: backfill jobs sent to sites over MQTT with task tokens.

A ``historian_backfill`` execution prepares a presigned upload, then its ``RunOnSite`` Task sends
a site job with its task token to the site-dispatch queue. :func:`dispatch_site_job` publishes it
on the worker's ``jobs`` topic; a publish that fails fails the Task at once (never a hang). The
site answers on its ``results``, ``progress`` and ``heartbeats`` topics; the IoT rule (AWS) or the
local bridge puts each message on the site-messages queue, and :func:`handle_site_message` turns it
into SendTaskSuccess, SendTaskFailure or SendTaskHeartbeat, after checking that the message comes
from the site the job was sent to and carries the token of the job's current attempt: a forged or
stale message changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from meterflow.bridge.ports import (
    BackfillWorkflow,
    CallbacksFor,
    JobRepository,
    ObjectHead,
    PublishFailed,
    SitePublisher,
    TaskCallbacks,
    UploadPresigner,
)
from meterflow.core.contracts import Contract
from meterflow.core.errors import Conflict, IntegrityError, InvalidInput, NotFound, StaleTaskToken
from meterflow.core.timeutil import naive_utc
from onprem_worker.contracts import (
    SITE_TO_CLOUD,
    CancelMessage,
    Channel,
    HeartbeatMessage,
    HistorianExportPayload,
    InvalidMessage,
    JobMessage,
    JobStatus,
    ProgressMessage,
    ResultMessage,
    parse_topic,
    topic,
    valid_name,
)

MAX_BACKFILL_WINDOW = timedelta(days=31)
HISTORIAN_PREFIX = "uncompressed/historian"
UPLOAD_URL_LIFETIME = timedelta(hours=12)  # outlives the task's timeout and its retries
# Step Functions' limit on an execution's input (256 KiB), less room for what the workflow adds.
MAX_WORKFLOW_INPUT_BYTES = 200_000
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class BridgeJobStatus(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    UPLOADED = "uploaded"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({BridgeJobStatus.SUCCEEDED, BridgeJobStatus.FAILED, BridgeJobStatus.CANCELLED})


def token_digest(task_token: str) -> str:
    """Tokens are credentials: the job record keeps their digest, never the token."""
    return hashlib.sha256(task_token.encode()).hexdigest()


@dataclass(frozen=True)
class BridgeJob:
    job_id: str
    tenant: str
    worker: str
    job_type: str
    status: BridgeJobStatus
    created_at: datetime
    updated_at: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    attempts: int = 0
    attempt: int = 0  # the current try's $$.State.RetryCount: only its messages are accepted
    token_sha256: str | None = None
    fraction: float = 0.0
    rows: int = 0
    output: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None

    def status_body(self) -> dict[str, Any]:
        """``GET /jobs/{job_id}``: everything but the token digest."""
        body = asdict(self)
        body.pop("token_sha256")
        for name in ("created_at", "updated_at", "window_start", "window_end"):
            body[name] = body[name].isoformat() if body[name] is not None else None
        body["status"] = self.status.value
        return body


class BackfillRequest(Contract):
    """``POST /backfills``: readings of a site's historian for a window, into the lake."""

    tenant: str
    worker: str
    start: datetime
    end: datetime
    meter_ids: list[str] | None = Field(default=None, min_length=1, max_length=100_000)

    @field_validator("tenant", "worker")
    @classmethod
    def _valid_names(cls, value: str) -> str:
        try:
            return valid_name(value, "name")
        except InvalidMessage as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Naive UTC, as every time the job keeps: an offset is applied, none means UTC."""
        try:
            return naive_utc(value)
        except OverflowError as exc:  # an offset that moves it past year 1 or 9999
            raise ValueError("is outside the calendar once converted to UTC") from exc

    @field_validator("end")
    @classmethod
    def _bounded_window(cls, value: datetime, info: Any) -> datetime:
        start = info.data.get("start")
        # Compared as a difference: start + 31 days would overflow at the end of the calendar.
        if start is not None and not timedelta(0) < value - start <= MAX_BACKFILL_WINDOW:
            raise ValueError(f"end must be after start and at most {MAX_BACKFILL_WINDOW.days} days later")
        return value


def start_backfill(body: object, jobs: JobRepository, workflow: BackfillWorkflow, now: datetime) -> BridgeJob:
    request = BackfillRequest.parse(body, "backfill")
    start, end = request.start, request.end
    if start >= naive_utc(now):  # a historian holds no readings of the future
        raise InvalidInput("backfill: start: must be in the past", field="start")
    job = BridgeJob(
        job_id=str(uuid.uuid4()),
        tenant=request.tenant,
        worker=request.worker,
        job_type="historian.export",
        status=BridgeJobStatus.QUEUED,
        created_at=now,
        updated_at=now,
        window_start=start,
        window_end=end,
    )
    workflow_input = json.dumps(
        {
            "job_id": job.job_id,
            "tenant": job.tenant,
            "worker": job.worker,
            "meter_ids": request.meter_ids,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
    )
    # Checked before anything is written: Step Functions refuses a larger input.
    if len(workflow_input.encode()) > MAX_WORKFLOW_INPUT_BYTES:
        raise InvalidInput(
            f"backfill: meter_ids: {len(request.meter_ids or ())} ids make the job larger than the "
            f"{MAX_WORKFLOW_INPUT_BYTES:,} bytes a workflow takes; split it into several backfills",
            field="meter_ids",
        )
    jobs.create(job)
    try:
        workflow.start(job.job_id, workflow_input)
    except Exception as exc:
        # Recorded but never started: say so rather than leave the job queued forever.
        jobs.ended(
            job.job_id, BridgeJobStatus.FAILED, now, failure_reason=f"could not start its workflow: {exc}"
        )
        raise
    return job


def get_job(job_id: str, jobs: JobRepository) -> BridgeJob:
    if not _JOB_ID.fullmatch(job_id):  # job ids are ours (uuid4): anything else cannot exist
        raise NotFound(f"job {job_id[:80]!r} does not exist", field="job_id")
    found = jobs.get(job_id)
    if found is None:
        raise NotFound(f"job {job_id[:80]!r} does not exist", field="job_id")
    return found


def cancel_job(
    job_id: str, jobs: JobRepository, workflow: BackfillWorkflow, publisher: SitePublisher, now: datetime
) -> BridgeJob:
    """Stop the execution and tell the site to stop the job (the cloud no longer waits for it)."""
    job = get_job(job_id, jobs)
    if job.status in FINISHED:
        raise Conflict(f"job {job_id} already ended: {job.status.value}", field="job_id")
    workflow.stop(job.job_id, "JobCancelled", "cancelled by request")
    jobs.ended(job.job_id, BridgeJobStatus.CANCELLED, now, failure_reason="cancelled by request")
    try:
        publisher.publish(
            topic(job.tenant, job.worker, Channel.CANCEL), CancelMessage(job_id=job.job_id).encode()
        )
    except PublishFailed as exc:
        # The execution is stopped either way; a job still running on site reports to a dead token.
        raise Conflict(f"execution stopped, but the site could not be told: {exc}") from exc
    return get_job(job_id, jobs)


# ------------------------------------------------------------------------------------ workflow jobs
class _PrepareJob(Contract):
    job_id: str
    tenant: str
    worker: str
    meter_ids: list[str] | None
    start: datetime
    end: datetime


def historian_object_key(tenant: str, job_id: str) -> str:
    return f"{HISTORIAN_PREFIX}/{tenant}/{job_id}.csv"


def prepare_backfill(payload: Mapping[str, Any], presigner: UploadPresigner) -> dict[str, Any]:
    """The site job's payload: what to read and where to PUT it. The object lands under
    ``uncompressed/``, where its S3 event starts the lake's ingestion like any other file."""
    job = _PrepareJob.parse(payload, "prepare_backfill")
    key = historian_object_key(job.tenant, job.job_id)
    url, headers = presigner.presign_put(
        key,
        {
            "file-id": f"historian-{job.tenant}-{job.job_id}",
            "file-format": "hes_wide",
            "reading-source": f"historian:{job.tenant}",
        },
        UPLOAD_URL_LIFETIME,
    )
    site_payload = HistorianExportPayload(
        meter_ids=job.meter_ids, start=job.start, end=job.end, upload_url=url, upload_headers=headers
    )
    return {"object_key": key, "job_payload": site_payload.model_dump(mode="json")}


class _SiteJob(Contract):
    job_id: str
    tenant: str
    worker: str
    job_type: str
    attempt: int = Field(default=0, ge=0)
    heartbeat_seconds: int = Field(ge=1)
    job_payload: dict[str, Any]


class _DispatchEnvelope(Contract):
    version: Literal[1]
    job_type: Literal["site_job"]
    task_token: str = Field(min_length=1)
    payload: dict[str, Any]


def dispatch_site_job(
    body: str,
    jobs: JobRepository,
    publisher: SitePublisher,
    callbacks_for: CallbacksFor,
    now: datetime,
) -> str:
    """Publish one attempt of a site job on its worker's ``jobs`` topic; returns the outcome.

    The attempt's token digest is recorded before the publish, so a fast answer finds it. A
    publish failure answers the Task with ``DispatchFailed`` at once; the Task's Retry decides.
    """
    # No usable token: nobody can be told, so a malformed message raises (and fails into the DLQ).
    envelope = _DispatchEnvelope.parse_json(body, "site dispatch message is malformed")
    callbacks = callbacks_for(envelope.task_token)
    try:
        job = _SiteJob.parse(envelope.payload, "site job")
        message = JobMessage(
            job_id=job.job_id,
            job_type=job.job_type,
            task_token=envelope.task_token,
            attempt=job.attempt,
            heartbeat_seconds=job.heartbeat_seconds,
            payload=job.job_payload,
            issued_at=now,
        )
        destination = topic(job.tenant, job.worker, Channel.JOBS)
    except (InvalidInput, InvalidMessage, ValidationError) as exc:
        _fail_quietly(callbacks, "MalformedJob", str(exc))
        return "malformed"
    if jobs.get(job.job_id) is None:
        _fail_quietly(callbacks, "UnknownJob", f"job {job.job_id} has no record")
        return "malformed"
    jobs.dispatched(job.job_id, token_digest(envelope.task_token), job.attempt, now)
    try:
        publisher.publish(destination, message.encode())
    except PublishFailed as exc:
        _fail_quietly(callbacks, "DispatchFailed", f"publish to {destination} failed: {exc}")
        return "publish_failed"
    return "dispatched"


def _fail_quietly(callbacks: TaskCallbacks, error: str, cause: str) -> None:
    with contextlib.suppress(StaleTaskToken):  # the workflow gave up on this attempt already
        callbacks.fail(error, cause)


class _RuleDelivery(Contract):
    """An SQS message of the site-messages rule: ``{"topic", "payload"}`` with the MQTT payload
    base64-encoded (IoT rule SQL ``SELECT encode(*, 'base64') AS payload, topic() AS topic``; the
    local bridge writes the same)."""

    model_config = ConfigDict(extra="ignore")

    topic: str
    payload: bytes

    @field_validator("payload", mode="plain")
    @classmethod
    def _base64(cls, value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("the payload must be base64 text")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"the payload is not base64: {exc}") from exc


def site_message_from_rule(body: str) -> tuple[str, bytes]:
    """(topic, payload) of an SQS message from the site-messages rule."""
    delivery = _RuleDelivery.parse_json(body, "site message envelope is malformed")
    return delivery.topic, delivery.payload


def site_message_for_rule(topic_name: str, payload: bytes) -> str:
    return json.dumps({"topic": topic_name, "payload": base64.b64encode(payload).decode()})


_MESSAGE_TYPES: dict[Channel, type[ResultMessage | ProgressMessage | HeartbeatMessage]] = {
    Channel.RESULTS: ResultMessage,
    Channel.PROGRESS: ProgressMessage,
    Channel.HEARTBEATS: HeartbeatMessage,
}


@dataclass(frozen=True)
class SiteMessageOutcome:
    outcome: Literal[
        "succeeded", "failed", "cancelled", "heartbeat", "progress", "rejected", "stale", "dropped"
    ]
    job_id: str | None = None
    reason: str = ""


def handle_site_message(
    topic_name: str, payload: bytes, jobs: JobRepository, callbacks_for: CallbacksFor, now: datetime
) -> SiteMessageOutcome:
    """One message a site published, as the IoT rule (or the local bridge) delivered it."""
    try:
        tenant, worker, channel = parse_topic(topic_name)
        if channel not in SITE_TO_CLOUD:
            raise InvalidMessage(f"{channel.value} is not a site-to-cloud channel")
        message = _MESSAGE_TYPES[channel].parse(payload)
    except InvalidMessage as exc:
        return SiteMessageOutcome("rejected", reason=str(exc))
    job = jobs.get(message.job_id)
    if job is None or (job.tenant, job.worker) != (tenant, worker):
        return SiteMessageOutcome("rejected", message.job_id, "no such job for this site")
    if message.attempt != job.attempt:
        return SiteMessageOutcome("rejected", job.job_id, f"attempt {message.attempt} is not the current one")
    if isinstance(message, ProgressMessage):
        if job.status not in FINISHED:
            jobs.progressed(job.job_id, message.fraction, message.rows, now)
        return SiteMessageOutcome("progress", job.job_id)
    if job.token_sha256 != token_digest(message.task_token):
        return SiteMessageOutcome("rejected", job.job_id, "the token is not the job's current attempt's")
    if isinstance(message, ResultMessage) and not jobs.claim_answer(job.job_id, message.attempt):
        # QoS 1 delivers results at least once; a token may outlive its try (LocalStack, moto keep
        # it across retries), so only the first answer of a try may reach Step Functions
        return SiteMessageOutcome("rejected", job.job_id, f"attempt {message.attempt} was answered already")
    callbacks = callbacks_for(message.task_token)
    try:
        if isinstance(message, HeartbeatMessage):
            callbacks.heartbeat()
            return SiteMessageOutcome("heartbeat", job.job_id)
        return _report_result(message, job, jobs, callbacks, now)
    except StaleTaskToken as stale:
        return SiteMessageOutcome("stale", job.job_id, str(stale))


def handle_rule_delivery(
    body: str, jobs: JobRepository, callbacks_for: CallbacksFor, now: datetime
) -> SiteMessageOutcome:
    """One SQS message of the site-messages rule. A malformed envelope cannot be retried into shape:
    it is dropped (the outcome says why), and everything a site could mean goes to
    :func:`handle_site_message`."""
    try:
        topic_name, payload = site_message_from_rule(body)
    except InvalidInput as exc:
        return SiteMessageOutcome("dropped", reason=exc.message)
    return handle_site_message(topic_name, payload, jobs, callbacks_for, now)


def _report_result(
    result: ResultMessage, job: BridgeJob, jobs: JobRepository, callbacks: TaskCallbacks, now: datetime
) -> SiteMessageOutcome:
    output, error, cause = result.output or {}, result.error or "WorkerError", result.cause or ""
    try:
        if result.status is JobStatus.SUCCEEDED:
            callbacks.succeed(output)
        else:
            callbacks.fail(error, cause)
    except StaleTaskToken:
        raise
    except Exception:
        # Step Functions did not take the answer (throttled, unreachable): the claim goes back, so
        # that the message's redelivery answers the task instead of being refused as a duplicate.
        jobs.release_answer(job.job_id, result.attempt)
        raise
    if result.status is JobStatus.SUCCEEDED:
        jobs.ended(job.job_id, BridgeJobStatus.UPLOADED, now, output=output)
        return SiteMessageOutcome("succeeded", job.job_id)
    # the Task's Retry may run the job again; the workflow's Catch marks the job failed if not
    jobs.attempt_failed(job.job_id, f"{error}: {cause}", now)
    return SiteMessageOutcome("cancelled" if result.status is JobStatus.CANCELLED else "failed", job.job_id)


class _VerifyJob(Contract):
    job_id: str
    object_key: str
    site_output: dict[str, Any]


def verify_backfill(
    payload: Mapping[str, Any], inbound: ObjectHead, jobs: JobRepository, now: datetime
) -> dict[str, Any]:
    """The uploaded object is what the site says it sent; the job is then done (the S3 event has
    already started the file's ingestion)."""
    job = _VerifyJob.parse(payload, "verify_backfill")
    reported = int(job.site_output.get("bytes", -1))
    size = inbound.size_of(job.object_key)
    if size is None:
        raise IntegrityError(f"the site reported an upload, but {job.object_key} does not exist")
    if size != reported:
        raise IntegrityError(f"{job.object_key} holds {size} bytes, the site reported {reported}")
    jobs.ended(job.job_id, BridgeJobStatus.SUCCEEDED, now, output=job.site_output)
    return {"object_key": job.object_key, "bytes": size, "rows": int(job.site_output.get("rows", 0))}
