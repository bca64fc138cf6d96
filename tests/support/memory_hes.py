"""In-memory HES ports for unit tests, behaving as their boto3 adapters do against AWS.

``tests/hes/adapters/test_port_contracts.py`` and ``tests/aws/adapters/test_messaging_contract.py``
run one suite against these fakes and against the adapters on moto: a difference fails there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from botocore.exceptions import ClientError

from meterflow.core.errors import Conflict
from meterflow.core.timeutil import utc_now
from meterflow.hes.domain.export import ExportStatus, FileRequest
from meterflow.hes.ports import StoredObject

# S3 refuses to complete a multipart upload whose parts, but the last, are smaller than this.
S3_MIN_PART_BYTES = 5 * 1024 * 1024
FAILURE_REASON_CHARS = 2000  # what the adapter keeps of a failure reason


def aws_error(code: str, operation: str, message: str = "") -> ClientError:
    """The error the boto3 adapter lets through when AWS refuses a call."""
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


def _to_millisecond(moment: datetime) -> datetime:
    """The table stores timestamps as ISO text to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class MemoryFileRequests:
    """The file-requests table: one item per request id, with DynamoDB's conditional writes.

    ``running`` and ``complete`` write what the export workflow's DynamoDB tasks write, for tests
    that need a request further along than the HES itself takes it.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.items: dict[str, FileRequest] = {}
        self._clock = clock

    def _now(self) -> datetime:
        return _to_millisecond(self._clock())

    def create(self, request: FileRequest) -> None:
        if request.request_id in self.items:
            raise Conflict(f"file request {request.request_id} already exists", field="request_id")
        # what create writes: a request as accepted, none of the fields a later status sets
        self.items[request.request_id] = replace(
            request,
            created_at=_to_millisecond(request.created_at),
            updated_at=_to_millisecond(request.updated_at),
            sftp_location=None,
            record_count=None,
            failure_reason=None,
        )

    def get(self, request_id: str) -> FileRequest | None:
        return self.items.get(request_id)

    def advance(self, request_id: str, status: ExportStatus, allowed_from: Sequence[ExportStatus]) -> bool:
        current = self.items.get(request_id)
        if current is None or current.status not in allowed_from:
            return False
        self.items[request_id] = replace(current, status=status, updated_at=self._now())
        return True

    def fail(self, request_id: str, reason: str) -> None:
        current = self.items.get(request_id)
        if current is None:
            return  # the adapter writes a partial item here (see the contract test): this is the intent
        self.items[request_id] = replace(
            current,
            status=ExportStatus.FAILED,
            updated_at=self._now(),
            failure_reason=reason[:FAILURE_REASON_CHARS],
        )

    # -------------------------------------------------------------- the export workflow's writes
    def running(self, request_id: str) -> None:
        current = self.items[request_id]
        self.items[request_id] = replace(current, status=ExportStatus.RUNNING, updated_at=self._now())

    def complete(self, request_id: str, sftp_location: str, record_count: int) -> None:
        current = self.items[request_id]
        self.items[request_id] = replace(
            current,
            status=ExportStatus.COMPLETED,
            updated_at=self._now(),
            sftp_location=sftp_location,
            record_count=record_count,
        )


class MemoryQueue:
    """A queue: the bodies sent, in order. With ``fail_with`` every send raises it (a queue out of reach)."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.messages: list[str] = []
        self.fail_with = fail_with

    def send(self, body: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.messages.append(body)

    def receive(self) -> list[str]:
        """Every message waiting, each received once."""
        received, self.messages = self.messages, []
        return received


@dataclass
class MemoryExecution:
    name: str
    input: str
    status: str = "RUNNING"  # Step Functions' names: RUNNING, SUCCEEDED, FAILED, ABORTED...


class MemoryWorkflow:
    """One state machine's executions, named as Step Functions names them.

    As in AWS, a start with the name of a *running* execution and the same input succeeds and starts
    nothing new (StartExecution is idempotent for standard workflows); with another input, or once
    that execution has ended, it is refused (``False``). With ``fail_with`` every start raises it.
    ``started`` lists the executions started, ``stopped`` every stop asked for.
    """

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.executions: dict[str, MemoryExecution] = {}
        self.started: list[tuple[str, str]] = []
        self.stopped: list[tuple[str, str, str]] = []
        self.fail_with = fail_with

    def start(self, execution_name: str, workflow_input: str) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        existing = self.executions.get(execution_name)
        if existing is not None:
            return existing.status == "RUNNING" and existing.input == workflow_input
        self.executions[execution_name] = MemoryExecution(execution_name, workflow_input)
        self.started.append((execution_name, workflow_input))
        return True

    def stop(self, execution_name: str, error: str, cause: str) -> None:
        """Stop a running execution; one that ended, or never existed, is left as it is."""
        self.stopped.append((execution_name, error[:256], cause[:32_000]))
        execution = self.executions.get(execution_name)
        if execution is not None and execution.status == "RUNNING":
            execution.status = "ABORTED"

    def finish(self, execution_name: str, status: str = "SUCCEEDED") -> None:
        """The execution ended by itself (what the state machine does; tests call it)."""
        self.executions[execution_name].status = status


@dataclass(frozen=True)
class _Object:
    data: bytes
    record_count: int | None


class MemoryObjectStore:
    """The exports bucket: objects with their record count, composed as S3 multipart uploads are."""

    def __init__(self) -> None:
        self.objects: dict[str, _Object] = {}

    def put(self, key: str, data: bytes, record_count: int) -> None:
        self.objects[key] = _Object(bytes(data), record_count)

    def head(self, key: str) -> StoredObject | None:
        found = self.objects.get(key)
        return None if found is None else StoredObject(key, len(found.data), found.record_count)

    def compose(
        self, target_key: str, part_groups: Sequence[Sequence[StoredObject]], record_count: int
    ) -> int:
        parts: list[bytes] = []
        for group in part_groups:
            missing = [item.key for item in group if item.key not in self.objects]
            if missing:
                raise aws_error("NoSuchKey", "UploadPart", f"{missing[0]} does not exist")
            parts.append(b"".join(self.objects[item.key].data for item in group))
        if any(len(part) < S3_MIN_PART_BYTES for part in parts[:-1]):
            raise aws_error("EntityTooSmall", "CompleteMultipartUpload", "a part but the last is under 5 MiB")
        self.objects[target_key] = _Object(b"".join(parts), record_count)
        return sum(item.size for group in part_groups for item in group)

    def delete_prefix(self, prefix: str) -> None:
        for key in [key for key in self.objects if key.startswith(prefix)]:
            del self.objects[key]

    def read(self, key: str) -> bytes:
        """The object's bytes (what a download of the export file gets)."""
        return self.objects[key].data
