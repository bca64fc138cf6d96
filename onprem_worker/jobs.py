"""The jobs a site worker runs: ``noop`` (the round-trip benchmark) and ``historian.export``.

A handler takes the job's payload and a :class:`JobContext`; it returns the output (a JSON
object) or raises. The worker reports a raise as a failure named after the exception's class,
and :class:`JobCancelled` as a cancellation.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pa_csv
import requests
from pydantic import ValidationError

from onprem_worker.contracts import HistorianExportPayload
from onprem_worker.historians import WIDE_SCHEMA, Historian, naive_utc

HES_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# The HES file format: what meterflow.hes.domain.export.encode_csv writes (timestamps as
# YYYY-MM-DD HH:MM:SS.ffffff come from Arrow's own timestamp[us] formatting).
CSV_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="none")
UPLOAD_TIMEOUT_SECONDS = (10.0, 120.0)  # connect, then the longest silence from the server
_READ_CHUNK_BYTES = 1 << 20

ProgressCallback = Callable[[int, float], None]  # (rows so far, fraction done)


@dataclass(frozen=True)
class JobContext:
    """What a running handler may use: a cancel flag to check often, and a progress reporter."""

    cancelled: threading.Event
    report_progress: ProgressCallback

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled("the job was cancelled")


JobHandler = Callable[[Mapping[str, Any], JobContext], dict[str, Any]]


class JobCancelled(Exception):
    """The cloud cancelled the job (a CancelMessage): the handler stopped where it was."""


class InvalidPayload(ValueError):
    """The job's payload is not what its job type takes."""


class HistorianNotConfigured(RuntimeError):
    """A historian job reached a worker started without ``MF_HISTORIAN_URL``."""


class UploadFailed(RuntimeError):
    """The presigned PUT did not store the file."""


def noop(payload: Mapping[str, Any], context: JobContext) -> dict[str, Any]:
    """Does nothing: what is left of a job's time is the protocol's round trip."""
    return {}


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    rows: int
    first_time: datetime | None
    last_time: datetime | None


class HistorianExport:
    """``historian.export``: stream the historian's readings to a headerless HES CSV, then PUT it.

    The file is spooled to a temporary directory (``TMPDIR``) because a presigned S3 PUT needs
    its Content-Length up front; it is deleted when the job ends, whatever the outcome.
    """

    def __init__(self, historian: Historian | None, spool_directory: Path | None = None) -> None:
        self.historian = historian
        self.spool_directory = spool_directory

    def __call__(self, payload: Mapping[str, Any], context: JobContext) -> dict[str, Any]:
        request = parse_export_payload(payload)
        if self.historian is None:
            raise HistorianNotConfigured("this worker has no historian: set MF_HISTORIAN_URL")
        with tempfile.TemporaryDirectory(prefix="meterflow-export-", dir=self.spool_directory) as spool:
            exported = write_export(self.historian, request, Path(spool) / "export.csv", context)
            context.raise_if_cancelled()
            size = exported.path.stat().st_size
            digest = sha256_of(exported.path, context)
            upload(exported.path, request.upload_url, request.upload_headers, context)
        return {
            "rows": exported.rows,
            "bytes": size,
            "sha256": digest,
            "first_time": _hes_time(exported.first_time),
            "last_time": _hes_time(exported.last_time),
        }


def handlers(historian: Historian | None) -> dict[str, JobHandler]:
    """The job types this worker serves."""
    return {"noop": noop, "historian.export": HistorianExport(historian)}


def parse_export_payload(payload: Mapping[str, Any]) -> HistorianExportPayload:
    try:
        return HistorianExportPayload.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise InvalidPayload(f"invalid historian.export payload: {where}: {first['msg']}") from exc


def write_export(
    historian: Historian, request: HistorianExportPayload, path: Path, context: JobContext
) -> ExportedFile:
    """Write the window's readings to ``path`` batch by batch, reporting progress, until cancelled."""
    start, end = naive_utc(request.start), naive_utc(request.end)
    span = (end - start).total_seconds()
    rows = 0
    first_time: datetime | None = None
    last_time: datetime | None = None
    with pa_csv.CSVWriter(str(path), WIDE_SCHEMA, write_options=CSV_WRITE_OPTIONS) as writer:
        for batch in historian.read(request.meter_ids, start, end):
            context.raise_if_cancelled()
            if batch.schema != WIDE_SCHEMA:
                batch = batch.cast(WIDE_SCHEMA)
            writer.write_batch(batch)
            rows += batch.num_rows
            first_time = first_time or _time_at(batch, 0)
            last_time = _time_at(batch, -1)
            context.report_progress(rows, min(1.0, max(0.0, (last_time - start).total_seconds() / span)))
    context.raise_if_cancelled()
    context.report_progress(rows, 1.0)
    return ExportedFile(path, rows, first_time, last_time)


def sha256_of(path: Path, context: JobContext) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK_BYTES):
            context.raise_if_cancelled()
            digest.update(chunk)
    return digest.hexdigest()


def upload(path: Path, url: str, headers: Mapping[str, str], context: JobContext) -> None:
    """One PUT of the file, streamed; a cancel stops it between blocks. Only a 2xx answer succeeds."""
    with path.open("rb") as file:
        body = _CancellableBody(file, path.stat().st_size, context)
        try:
            response = requests.put(
                url,
                data=body,
                headers=dict(headers),
                timeout=UPLOAD_TIMEOUT_SECONDS,
                allow_redirects=False,  # a presigned PUT never redirects; following one would resend nothing
            )
        except requests.RequestException as exc:
            # The message would carry the presigned URL (a bearer credential): name the host only.
            raise UploadFailed(f"PUT {redacted(url)} failed: {type(exc).__name__}") from exc
    with response:
        if not 200 <= response.status_code < 300:
            raise UploadFailed(
                f"PUT {redacted(url)} answered HTTP {response.status_code}: {response.text[:500]}"
            )


def redacted(url: str) -> str:
    """The URL without its query string, where a presigned URL keeps its signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _CancellableBody:
    """A file body that requests streams block by block (its length sets Content-Length)."""

    def __init__(self, file: BinaryIO, size: int, context: JobContext) -> None:
        self._file = file
        self._size = size
        self._context = context

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        self._context.raise_if_cancelled()
        return self._file.read(size)


def _time_at(batch: pa.RecordBatch, index: int) -> datetime:
    value: datetime = batch.column("time")[index].as_py()
    return value


def _hes_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime(HES_TIME_FORMAT)
