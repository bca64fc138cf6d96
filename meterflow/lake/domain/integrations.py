"""Input-adapter integrations: which source to pull, which window next, and the jobs of one run.

An integration is a row of the integrations table. The scheduler starts one input-adapter
execution per eligible integration (enabled, idle, ``next_eligible`` passed), named after the
integration and its window so a second start of the same window is refused by Step Functions.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import unquote_plus

from pydantic import ConfigDict, Field, field_validator

from meterflow.core.contracts import Contract
from meterflow.core.errors import InvalidInput, NotFound, RetryableError
from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.lake.ports import HesApi, IntegrationRepository, LakeStore, SftpSource, WorkflowStarter

logger = logging.getLogger("meterflow.lake.integrations")

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
IntegrationState = Literal["idle", "running", "failed"]
WindowBy = Literal["time", "arrival_time"]


class Integration(Contract):
    """One source the input adapter pulls from (today: a HES exposing seed 000's API and SFTP).

    A row of the integrations table: attributes it does not know are ignored.
    """

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "integration"

    integration_id: str
    enabled: bool = True
    state: IntegrationState = "idle"
    frequency_minutes: int = Field(default=60, ge=15, le=7 * 24 * 60)
    # How long after a window ends the HES is expected to hold (nearly) all of its readings.
    settle_minutes: int = Field(default=15, ge=0, le=24 * 60)
    window_start: str
    window_end: str
    next_eligible: str
    hes_api_url: str
    sftp_host: str
    sftp_port: int = 22
    sftp_user: str = "sftp-user"
    sftp_host_key: str  # the server's public host key, OpenSSH format: the download verifies it
    sftp_secret_name: str
    reading_source: str = "hes"
    # What a window selects in the HES export: the reads it *received* in the window (an
    # incremental pull: late reads of earlier hours come with the window they arrived in, and the
    # lake merges them as late reads) or, for a backfill, the reads *taken* in it.
    window_by: WindowBy = "arrival_time"
    failure_reason: str | None = None
    # How often the window was retried after a failure (`meterflow lake retry`): its executions
    # need names of their own, as Step Functions keeps a name for 90 days after its execution.
    attempt: int = Field(default=0, ge=0)

    @field_validator("integration_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("integration_id must be 1-40 lowercase letters, digits or '-'")
        return value

    @classmethod
    def new(
        cls,
        integration_id: str,
        first_window_start: datetime,
        frequency_minutes: int,
        settle_minutes: int,
        **connection: Any,
    ) -> Integration:
        end = first_window_start + timedelta(minutes=frequency_minutes)
        return cls.parse(
            {
                "integration_id": integration_id,
                "frequency_minutes": frequency_minutes,
                "settle_minutes": settle_minutes,
                "window_start": format_hes_time(first_window_start),
                "window_end": format_hes_time(end),
                "next_eligible": format_hes_time(end + timedelta(minutes=settle_minutes)),
                **connection,
            }
        )

    def is_due(self, now: datetime) -> bool:
        return (
            self.enabled
            and self.state == "idle"
            and parse_hes_time(self.next_eligible, "next_eligible") <= now
        )

    def execution_name(self) -> str:
        start = parse_hes_time(self.window_start, "window_start")
        retry = f"-r{self.attempt}" if self.attempt else ""
        return f"{self.integration_id}-{start:%Y%m%dT%H%M}{retry}"

    def next_window(self) -> dict[str, str]:
        end = parse_hes_time(self.window_end, "window_end")
        next_end = end + timedelta(minutes=self.frequency_minutes)
        return {
            "next_window_start": format_hes_time(end),
            "next_window_end": format_hes_time(next_end),
            "next_eligible": format_hes_time(next_end + timedelta(minutes=self.settle_minutes)),
        }


# ------------------------------------------------------------------------------------------ keys
@dataclass(frozen=True)
class RunKeys:
    integration_id: str
    request_id: str

    @property
    def file_id(self) -> str:
        return f"{self.integration_id}-{self.request_id}"

    @property
    def landing_key(self) -> str:
        return f"landing/{self.integration_id}/{self.request_id}.csv.gz"

    @property
    def processed_key(self) -> str:
        return f"processed/{self.integration_id}/{self.request_id}.csv.gz"

    @property
    def uncompressed_key(self) -> str:
        return f"uncompressed/{self.integration_id}/{self.request_id}.csv"


class _RunPayload(Contract):
    """The payload of every input-adapter job: the execution's input and what earlier steps added."""

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "malformed input-adapter job"

    integration_id: str
    window_start: str
    window_end: str
    request_id: str = ""
    sftp_location: str = ""
    landing_key: str = ""
    record_count: int | None = None
    reading_source: str = "hes"


def _run(payload: Mapping[str, Any]) -> _RunPayload:
    return _RunPayload.parse(payload)


def _integration(repository: IntegrationRepository, integration_id: str) -> Integration:
    found = repository.get(integration_id)
    if found is None:
        raise NotFound(f"integration {integration_id!r} does not exist", field="integration_id")
    return found


# ------------------------------------------------------------------------------------------ jobs
def request_hes_file(
    payload: Mapping[str, Any], repository: IntegrationRepository, hes: HesApi
) -> dict[str, Any]:
    run = _run(payload)
    integration = _integration(repository, run.integration_id)
    request_id = hes.request_file(
        integration.hes_api_url, run.window_start, run.window_end, integration.window_by
    )
    frozen = integration.model_copy(update={"window_start": run.window_start, "window_end": run.window_end})
    return {"request_id": request_id, **frozen.next_window()}


def check_hes_file(
    payload: Mapping[str, Any], repository: IntegrationRepository, hes: HesApi
) -> dict[str, Any]:
    run = _run(payload)
    integration = _integration(repository, run.integration_id)
    body = hes.file_status(integration.hes_api_url, run.request_id)
    status = body.get("status")
    if status not in {"queued", "submitted", "running", "completed", "failed"}:
        raise InvalidInput(f"HES answered an unknown status {status!r} for {run.request_id}")
    return {
        "status": status,
        "sftp_location": body.get("sftp_location") or "",
        "record_count": int(body.get("record_count") or 0),
    }


def download_hes_file(
    payload: Mapping[str, Any], repository: IntegrationRepository, sftp: SftpSource, inbound: LakeStore
) -> dict[str, Any]:
    run = _run(payload)
    if not run.sftp_location:
        raise InvalidInput("download needs the HES file's sftp_location")
    integration = _integration(repository, run.integration_id)
    keys = RunKeys(run.integration_id, run.request_id)
    size = inbound.upload_stream(
        keys.landing_key,
        sftp.download(integration, run.sftp_location),
        metadata={"integration-id": run.integration_id, "request-id": run.request_id},
    )
    return {"landing_key": keys.landing_key, "processed_key": keys.processed_key, "size_bytes": size}


def gunzip_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip stream of one or more members (the HES file is a concatenation of members)."""
    decompressor = zlib.decompressobj(wbits=31)
    member_open = False  # input fed to a member that has not ended yet
    for chunk in chunks:
        data = chunk
        while data:
            member_open = True
            out = decompressor.decompress(data)
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                member_open = False
            else:
                data = b""
    if member_open:
        raise InvalidInput("the gzip file is truncated: its last member does not end")


def uncompress_file(payload: Mapping[str, Any], inbound: LakeStore, now: datetime) -> dict[str, Any]:
    """landing/...csv.gz -> uncompressed/...csv, carrying what the lake-ingest workflow needs."""
    run = _run(payload)
    keys = RunKeys(run.integration_id, run.request_id)
    landing_key = run.landing_key or keys.landing_key
    info = inbound.head(landing_key)
    if info is None:
        raise RetryableError(f"{landing_key} is not in the inbound bucket")
    metadata = {
        "file-id": keys.file_id,
        "file-format": "hes_wide",
        "reading-source": run.reading_source,
        "window-start": run.window_start,
        "window-end": run.window_end,
        "arrive-time": now.isoformat(),
    }
    try:
        size = inbound.upload_stream(
            keys.uncompressed_key, gunzip_stream(inbound.stream(landing_key)), metadata
        )
    except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"{landing_key} is not a valid gzip file: {exc}") from exc
    return {"file_id": keys.file_id, "uncompressed_key": keys.uncompressed_key, "size_bytes": size}


# ------------------------------------------------------------------------------------ scheduling
def schedule_due(repository: IntegrationRepository, workflow: WorkflowStarter, now: datetime) -> list[str]:
    """Start one input-adapter execution per due integration; returns the executions started."""
    started = []
    for integration in repository.all():
        if integration.is_due(now):
            name = integration.execution_name()
            if workflow.start(name, json.dumps({"integration_id": integration.integration_id})):
                started.append(name)
            else:
                # An execution of that name ended already: nothing runs until the window changes
                # or the integration is retried (which names its executions anew).
                logger.warning(
                    "input adapter %s is due but %s ran already: not started",
                    integration.integration_id,
                    name,
                )
    return started


# -------------------------------------------------------------------------------- ingest trigger
class _S3Object(Contract):
    model_config = ConfigDict(extra="ignore")

    key: str  # URL-encoded
    sequencer: str = "0"  # moto sends none


class _S3Entity(Contract):
    model_config = ConfigDict(extra="ignore")

    object: _S3Object


class _S3Record(Contract):
    model_config = ConfigDict(extra="ignore")

    event_name: str = Field(default="", alias="eventName")
    event_time: str = Field(default="", alias="eventTime")
    s3: _S3Entity


class _S3Notification(Contract):
    """An S3 event notification (what matters of it), or the test event S3 sends first."""

    model_config = ConfigDict(extra="ignore")
    what: ClassVar[str] = "S3 notification is malformed"

    event: str = Field(default="", alias="Event")
    records: list[_S3Record] = Field(default_factory=list, alias="Records")


def ingest_requests_from_s3_event(body: str, inbound: LakeStore) -> list[tuple[str, str]]:
    """(execution name, workflow input) for each object an S3 notification announces.

    The name joins the file id and the event's sequencer: a redelivered notification maps to the
    same name (refused by Step Functions), a re-upload of the same key to a new one.
    """
    message = _S3Notification.parse_json(body)
    if message.event == "s3:TestEvent":
        return []
    starts = []
    for record in message.records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        key = unquote_plus(record.s3.object.key)  # notifications URL-encode the key
        sequencer = record.s3.object.sequencer
        info = inbound.head(key)
        if info is None:
            continue  # deleted since (the input adapter cleans up after ingestion): nothing to do
        metadata = info.metadata
        file_id = metadata.get("file-id") or _file_id_from_key(key)
        request = {
            "file_id": file_id,
            "bucket": inbound.bucket,
            "key": key,
            "file_format": metadata.get("file-format") or _format_from_key(key),
            "reading_source": metadata.get("reading-source") or _source_from_key(key),
            "window_start": metadata.get("window-start", ""),
            "window_end": metadata.get("window-end", ""),
            "arrive_time": metadata.get("arrive-time") or record.event_time,
        }
        # moto sends no sequencer; the ETag then tells a changed object from a redelivered event
        version = f"{info.etag.strip(chr(34))[:12]}-{sequencer[-8:]}"
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{file_id[:58]}-{version}")[:80]
        starts.append((name, json.dumps(request)))
    return starts


def _file_id_from_key(key: str) -> str:
    stem = key.removeprefix("uncompressed/").rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem)


def _format_from_key(key: str) -> str:
    return "london_lcl" if key.startswith("uncompressed/london") else "hes_wide"


def _source_from_key(key: str) -> str:
    return "london-lcl" if key.startswith("uncompressed/london") else "hes"


def start_ingestions(body: str, inbound: LakeStore, workflow: WorkflowStarter) -> list[str]:
    """Start the lake-ingest workflow for each object an S3 notification announces."""
    return [
        name
        for name, request in ingest_requests_from_s3_event(body, inbound)
        if workflow.start(name, request)
    ]
