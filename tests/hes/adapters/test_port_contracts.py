"""The HES ports' contracts, run against the in-memory fakes and the boto3 adapters on moto.

Each test is one behaviour the domain relies on; it runs once per implementation, so a fake that
behaves otherwise than AWS fails here before a unit test can trust it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from botocore.exceptions import ClientError

from meterflow.core.errors import Conflict
from meterflow.hes.adapters.dynamodb_requests import DynamoDbFileRequestRepository
from meterflow.hes.adapters.s3_store import S3ObjectStore
from meterflow.hes.domain.export import ExportStatus, ExportWindow, FileRequest, WindowBy
from meterflow.hes.ports import FileRequestRepository, ObjectStore, StoredObject
from tests.support.memory_hes import S3_MIN_PART_BYTES, MemoryFileRequests, MemoryObjectStore
from tests.support.moto_inprocess import moto_stack

# microseconds on purpose: the table keeps timestamps to the millisecond
CREATED = datetime(2023, 2, 27, 16, 0, 0, 123456)
QUEUED, SUBMITTED, RUNNING = ExportStatus.QUEUED, ExportStatus.SUBMITTED, ExportStatus.RUNNING
COMPLETED, FAILED = ExportStatus.COMPLETED, ExportStatus.FAILED


def new_request(request_id: str = "0b9c6f3e-2c1a-4b8e-9d1f-6a7e5c4b3a21") -> FileRequest:
    window = ExportWindow.from_body(
        {
            "start_date": "2023-02-27 00:00:00.000001",
            "end_date": "2023-02-28 00:00:00.000000",
            "window_by": "arrival_time",
        }
    )
    return FileRequest.new(window, CREATED, request_id)


# ------------------------------------------------------------------------- file-request repository
@pytest.fixture(params=["memory", "dynamodb"])
def repository(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FileRequestRepository]:
    """GIVEN the file-requests table: the fake, or DynamoDB (moto) created as the stack creates it."""
    if request.param == "memory":
        yield MemoryFileRequests()
        return
    with moto_stack(monkeypatch, tables=["file_requests"]) as aws:
        yield DynamoDbFileRequestRepository(aws.clients.dynamodb, aws.table("file_requests"))


@pytest.fixture
def queued(repository: FileRequestRepository) -> FileRequest:
    """GIVEN a request accepted (queued)."""
    request = new_request()
    repository.create(request)
    return request


def test_a_created_request_reads_back_queued_with_its_window(
    repository: FileRequestRepository, queued: FileRequest
) -> None:
    # WHEN it is read back
    found = repository.get(queued.request_id)
    # THEN it is the request as accepted, its timestamps to the millisecond
    assert found is not None
    assert (found.status, found.start_date, found.end_date, found.window_by) == (
        QUEUED,
        queued.start_date,
        queued.end_date,
        WindowBy.ARRIVAL_TIME,
    )
    assert found.created_at == found.updated_at == CREATED.replace(microsecond=123000)
    assert (found.sftp_location, found.record_count, found.failure_reason) == (None, None, None)


def test_creating_an_existing_request_id_conflicts_and_keeps_the_first(
    repository: FileRequestRepository, queued: FileRequest
) -> None:
    # WHEN a second request with the same id is created
    other = FileRequest.new(
        ExportWindow.from_body({"start_date": "2024-01-01", "end_date": "2024-01-02"}),
        CREATED,
        queued.request_id,
    )
    with pytest.raises(Conflict) as conflict:
        repository.create(other)
    # THEN it conflicts on request_id and the first request is untouched
    assert conflict.value.field == "request_id"
    found = repository.get(queued.request_id)
    assert found is not None and found.start_date == queued.start_date


def test_an_unknown_request_is_none(repository: FileRequestRepository) -> None:
    assert repository.get("5d1e2f3a-0000-4000-8000-000000000000") is None


@pytest.mark.parametrize(
    ("path", "allowed_from"),
    [
        ([], (QUEUED, SUBMITTED)),  # the first submission
        ([SUBMITTED], (QUEUED, SUBMITTED)),  # a redelivered submission
        ([SUBMITTED, RUNNING], (RUNNING,)),
    ],
    ids=["queued", "submitted-again", "running"],
)
def test_advance_moves_a_request_whose_status_is_allowed(
    repository: FileRequestRepository,
    queued: FileRequest,
    path: list[ExportStatus],
    allowed_from: tuple[ExportStatus, ...],
) -> None:
    # GIVEN the request has been moved along ``path``
    for status in path:
        assert repository.advance(queued.request_id, status, tuple(ExportStatus))
    # WHEN it advances from a status it is in
    moved = repository.advance(queued.request_id, COMPLETED, allowed_from)
    # THEN it moved, and says when
    found = repository.get(queued.request_id)
    assert moved is True
    assert found is not None and found.status is COMPLETED
    assert found.updated_at > found.created_at


@pytest.mark.parametrize("current", [RUNNING, COMPLETED, FAILED])
def test_advance_refuses_a_request_past_the_allowed_statuses(
    repository: FileRequestRepository, queued: FileRequest, current: ExportStatus
) -> None:
    # GIVEN a request already past submission
    assert repository.advance(queued.request_id, current, (QUEUED,))
    # WHEN a (late, redelivered) submission tries to move it
    moved = repository.advance(queued.request_id, SUBMITTED, (QUEUED, SUBMITTED))
    # THEN it is refused and the request stays where it was
    found = repository.get(queued.request_id)
    assert moved is False
    assert found is not None and found.status is current


def test_advance_of_an_unknown_request_is_refused_and_creates_nothing(
    repository: FileRequestRepository,
) -> None:
    unknown = "5d1e2f3a-0000-4000-8000-000000000000"
    assert repository.advance(unknown, SUBMITTED, (QUEUED, SUBMITTED)) is False
    assert repository.get(unknown) is None


@pytest.mark.parametrize("current", [QUEUED, RUNNING])
def test_fail_marks_the_request_failed_with_its_reason(
    repository: FileRequestRepository, queued: FileRequest, current: ExportStatus
) -> None:
    # GIVEN a request queued or running
    repository.advance(queued.request_id, current, (QUEUED,))
    # WHEN it fails
    repository.fail(queued.request_id, "could not enqueue the request: throttled")
    # THEN it is failed, with the reason, whatever it was doing
    found = repository.get(queued.request_id)
    assert found is not None
    assert (found.status, found.failure_reason) == (FAILED, "could not enqueue the request: throttled")
    assert found.updated_at > found.created_at


def test_a_failure_reason_is_kept_to_2000_characters(
    repository: FileRequestRepository, queued: FileRequest
) -> None:
    repository.fail(queued.request_id, "x" * 5000)
    found = repository.get(queued.request_id)
    assert found is not None and found.failure_reason == "x" * 2000


def test_failing_an_unknown_request_creates_no_request(repository: FileRequestRepository) -> None:
    # GIVEN no request with this id
    unknown = "5d1e2f3a-0000-4000-8000-000000000000"
    # WHEN a request that does not exist (expired, never created) is failed
    repository.fail(unknown, "too late")
    # THEN there is still no such request
    assert repository.get(unknown) is None


# -------------------------------------------------------------------------------- object store
@dataclass(frozen=True)
class Bucket:
    store: ObjectStore
    read: Callable[[str], bytes]  # the object's bytes, as a download gets them


@pytest.fixture(params=["memory", "s3"])
def bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    """GIVEN the exports bucket: the fake, or S3 (moto) created as the stack creates it."""
    if request.param == "memory":
        memory = MemoryObjectStore()
        yield Bucket(memory, memory.read)
        return
    with moto_stack(monkeypatch, buckets=["hes_exports"]) as aws:
        name = aws.bucket("hes_exports")

        def read(key: str) -> bytes:
            return bytes(aws.clients.s3.get_object(Bucket=name, Key=key)["Body"].read())

        yield Bucket(S3ObjectStore(aws.clients.s3, name), read)


def stored(bucket: Bucket, key: str, data: bytes, record_count: int) -> StoredObject:
    bucket.store.put(key, data, record_count)
    found = bucket.store.head(key)
    assert found is not None
    return found


def test_a_stored_chunk_is_described_by_its_head(bucket: Bucket) -> None:
    # WHEN a chunk is stored THEN its head gives its key, size and record count
    bucket.store.put("staging/r/e/chunk-000000.csv.gz", b"abc" * 10, 7)
    assert bucket.store.head("staging/r/e/chunk-000000.csv.gz") == StoredObject(
        "staging/r/e/chunk-000000.csv.gz", 30, 7
    )


def test_an_absent_object_has_no_head(bucket: Bucket) -> None:
    assert bucket.store.head("exports/none.gz") is None


def test_a_retried_chunk_replaces_the_first(bucket: Bucket) -> None:
    # GIVEN a chunk stored once WHEN a retry stores it again THEN the retry's bytes are kept
    bucket.store.put("staging/chunk", b"first", 1)
    bucket.store.put("staging/chunk", b"second try", 2)
    assert bucket.store.head("staging/chunk") == StoredObject("staging/chunk", 10, 2)
    assert bucket.read("staging/chunk") == b"second try"


def test_compose_concatenates_the_groups_in_order(bucket: Bucket) -> None:
    # GIVEN one chunk of the S3 minimum part size (copied server-side) and two small ones (one part)
    big = stored(bucket, "staging/c0", b"A" * S3_MIN_PART_BYTES, 100)
    small = [stored(bucket, "staging/c1", b"BB", 2), stored(bucket, "staging/c2", b"CCC", 3)]
    # WHEN they are composed into the export file
    size = bucket.store.compose("exports/file.gz", [[big], small], 105)
    # THEN the file is their concatenation, in order, with the total record count
    assert size == S3_MIN_PART_BYTES + 5
    assert bucket.read("exports/file.gz") == b"A" * S3_MIN_PART_BYTES + b"BBCCC"
    assert bucket.store.head("exports/file.gz") == StoredObject("exports/file.gz", size, 105)


@pytest.mark.parametrize("keys", [["c0"], ["c0", "c1", "c2"]], ids=["one-chunk", "several-chunks"])
def test_a_small_export_is_one_part(bucket: Bucket, keys: list[str]) -> None:
    # GIVEN chunks far under the S3 minimum part size WHEN composed as a single (last) part
    parts = [stored(bucket, f"staging/{key}", key.encode(), 1) for key in keys]
    size = bucket.store.compose("exports/small.gz", [parts], len(keys))
    # THEN S3 accepts it: only parts before the last must reach the minimum
    assert bucket.read("exports/small.gz") == "".join(keys).encode()
    assert size == sum(part.size for part in parts)


def test_compose_refuses_a_part_under_the_minimum_before_the_last(bucket: Bucket) -> None:
    # GIVEN two small chunks composed as two parts (the domain's grouping must prevent this)
    first, last = stored(bucket, "staging/c0", b"small", 1), stored(bucket, "staging/c1", b"last", 1)
    # WHEN composed THEN S3 refuses, and no export file is left behind
    with pytest.raises(ClientError) as refused:
        bucket.store.compose("exports/file.gz", [[first], [last]], 2)
    assert refused.value.response["Error"]["Code"] == "EntityTooSmall"
    assert bucket.store.head("exports/file.gz") is None


def test_compose_of_a_vanished_chunk_fails_and_writes_nothing(bucket: Bucket) -> None:
    # GIVEN a chunk described, then deleted (a concurrent cleanup)
    there = stored(bucket, "staging/c0", b"there", 1)
    gone = stored(bucket, "staging/c1", b"gone", 1)
    bucket.store.delete_prefix("staging/c1")
    # WHEN composed THEN the compose fails and leaves no export file
    with pytest.raises(ClientError):
        bucket.store.compose("exports/file.gz", [[there, gone]], 2)
    assert bucket.store.head("exports/file.gz") is None


def test_delete_prefix_removes_exactly_the_objects_under_it(bucket: Bucket) -> None:
    # GIVEN the staging objects of two executions whose names share a beginning, and an export
    for key in ("staging/r/e1/chunk-0", "staging/r/e1/chunk-1", "staging/r/e10/chunk-0", "exports/r/f.gz"):
        bucket.store.put(key, b"x", 1)
    # WHEN one execution's staging prefix is deleted
    bucket.store.delete_prefix("staging/r/e1/")
    # THEN only its objects are gone; deleting an empty prefix is harmless
    assert [
        bucket.store.head(key) is not None for key in ("staging/r/e1/chunk-0", "staging/r/e1/chunk-1")
    ] == [
        False,
        False,
    ]
    assert bucket.store.head("staging/r/e10/chunk-0") is not None
    assert bucket.store.head("exports/r/f.gz") is not None
    bucket.store.delete_prefix("staging/nothing-here/")
