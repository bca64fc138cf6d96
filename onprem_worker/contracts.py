"""The messages between the cloud and an on-premises worker, version 1, and the topics they use.

Every message is a validated contract: a worker and the cloud both reject what does not parse.
Topics are per tenant and per worker, ``meterflow/<tenant>/<worker>/<channel>``; the broker (IoT
Core policy in AWS, the Mosquitto ACL locally) lets a worker touch only its own.

This module is shared by the on-premises worker and the cloud handlers, so it depends on pydantic
alone.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

VERSION: Literal[1] = 1
TOPIC_ROOT = "meterflow"
# fullmatch, not match with "$": "$" also matches before a trailing newline, which would split the
# broker's generated ACL file and the topics built from these names
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


class Channel(StrEnum):
    JOBS = "jobs"  # cloud -> site
    CANCEL = "cancel"  # cloud -> site
    RESULTS = "results"  # site -> cloud
    PROGRESS = "progress"  # site -> cloud
    HEARTBEATS = "heartbeats"  # site -> cloud


CLOUD_TO_SITE = (Channel.JOBS, Channel.CANCEL)
SITE_TO_CLOUD = (Channel.RESULTS, Channel.PROGRESS, Channel.HEARTBEATS)


class InvalidMessage(ValueError):
    """A message that is not a valid contract (or not on a Meterflow topic)."""


def valid_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise InvalidMessage(f"{what} must be 1-40 lowercase letters, digits or '-', got {value[:50]!r}")
    return value


def is_valid_job_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` passes the job_id rule of every message (1-80 letters, digits, '-', '_')."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def topic(tenant: str, worker: str, channel: Channel) -> str:
    return f"{TOPIC_ROOT}/{valid_name(tenant, 'tenant')}/{valid_name(worker, 'worker')}/{channel.value}"


def parse_topic(name: str) -> tuple[str, str, Channel]:
    """(tenant, worker, channel) of a Meterflow topic."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT:
        raise InvalidMessage(f"not a Meterflow topic: {name[:120]!r}")
    try:
        channel = Channel(parts[3])
    except ValueError as exc:
        raise InvalidMessage(f"unknown channel {parts[3][:40]!r}") from exc
    return valid_name(parts[1], "tenant"), valid_name(parts[2], "worker"), channel


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = VERSION
    job_id: str

    @field_validator("job_id")
    @classmethod
    def _valid_job_id(cls, value: str) -> str:
        if not _JOB_ID.fullmatch(value):
            raise ValueError("job_id must be 1-80 letters, digits, '-' or '_'")
        return value

    @classmethod
    def parse(cls, raw: bytes | str) -> Self:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "message"
            raise InvalidMessage(f"invalid {cls.__name__}: {where}: {first['msg']}") from exc

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class JobMessage(_Message):
    """A job for a site (``jobs``): run ``job_type`` with ``payload``, answer with the token."""

    job_type: str = Field(min_length=1, max_length=64)
    task_token: str = Field(min_length=1, max_length=8192)
    # Which try of the Task this is ($$.State.RetryCount). Step Functions may keep one token across
    # a Task's retries (LocalStack and moto do), so (job_id, attempt) names a run, and every answer
    # echoes it: an answer of an earlier try can never complete a later one.
    attempt: int = Field(default=0, ge=0, le=1_000)
    # The Task's HeartbeatSeconds: the worker beats well inside it.
    heartbeat_seconds: int = Field(ge=1, le=86_400)
    payload: dict[str, Any]
    issued_at: datetime


class CancelMessage(_Message):
    """Stop the job if it runs (``cancel``); its result is then reported as cancelled."""

    reason: str = Field(default="cancelled", max_length=1024)


class JobStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ResultMessage(_Message):
    """How a job ended (``results``). A failure carries the error class and message, never a success."""

    task_token: str = Field(min_length=1, max_length=8192)
    attempt: int = Field(default=0, ge=0, le=1_000)
    status: JobStatus
    output: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=256)
    cause: str | None = Field(default=None, max_length=32_768)
    finished_at: datetime

    @model_validator(mode="after")
    def _outcome_is_consistent(self) -> Self:
        if self.status is JobStatus.SUCCEEDED and (self.error or self.cause):
            raise ValueError("a succeeded job has no error")
        if self.status is not JobStatus.SUCCEEDED and (self.output is not None or not self.error):
            raise ValueError("a failed or cancelled job names its error and has no output")
        return self


class ProgressMessage(_Message):
    """How far a running job is (``progress``)."""

    attempt: int = Field(default=0, ge=0, le=1_000)
    fraction: float = Field(ge=0.0, le=1.0)
    rows: int = Field(ge=0)
    at: datetime


class HeartbeatMessage(_Message):
    """The job is alive (``heartbeats``): the cloud forwards it as SendTaskHeartbeat."""

    task_token: str = Field(min_length=1, max_length=8192)
    attempt: int = Field(default=0, ge=0, le=1_000)
    at: datetime


class HistorianExportPayload(BaseModel):
    """``historian.export``: readings of ``meter_ids`` (all when None) in [start, end), uploaded as
    a HES wide CSV (seed 001 table 1, headerless) with one presigned PUT: the site holds no AWS
    credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meter_ids: list[str] | None = None
    start: datetime
    end: datetime
    upload_url: str = Field(min_length=8, max_length=8192)
    upload_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime, info: Any) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("end must be after start")
        return value
