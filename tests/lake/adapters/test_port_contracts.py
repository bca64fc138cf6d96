"""The lake's ports' contracts, run against the in-memory fakes and the boto3 adapters on moto.

Each test is one behaviour the lake's domain relies on (conditional writes for optimistic merges,
ranged reads, streamed uploads, the integrations table's reset...), run once per implementation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from meterflow.lake.adapters.integrations_table import DynamoDbIntegrations
from meterflow.lake.adapters.lake_store import EventBridgePublisher, S3LakeStore
from meterflow.lake.domain.integrations import Integration
from meterflow.lake.domain.schema import LAKE_EVENT_SOURCE, LATE_READS_DETAIL_TYPE
from meterflow.lake.ports import ConcurrentUpdate, EventPublisher, IntegrationRepository, LakeStore
from tests.support.memory_lake import MemoryIntegrations, MemoryLakeStore, RecordingPublisher
from tests.support.moto_inprocess import moto_stack

PART_BYTES = 8 * 1024 * 1024  # the S3 adapter's multipart part size
KEY = "readings/parquet/reading_type=kw/date=2023-02-27/hour=16/part.parquet"


# ------------------------------------------------------------------------------------ lake store
@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[LakeStore]:
    """GIVEN the integrated bucket: the fake, or S3 (moto) created as the stack creates it."""
    if request.param == "memory":
        yield MemoryLakeStore("memory")
        return
    with moto_stack(monkeypatch, buckets=["integrated"]) as aws:
        yield S3LakeStore(aws.clients.s3, aws.bucket("integrated"))


def test_an_absent_object_has_no_head_and_no_content(store: LakeStore) -> None:
    assert store.head(KEY) is None
    assert store.get(KEY) is None


def test_a_written_object_reads_back_with_one_etag(store: LakeStore) -> None:
    # WHEN an object is written with metadata
    store.put(KEY, b"parquet bytes", metadata={"ledger": "[]", "rows": "12"})
    # THEN its head and its content agree on size, etag and metadata
    head, found = store.head(KEY), store.get(KEY)
    assert head is not None and found is not None
    assert (found.data, head.size) == (b"parquet bytes", 13)
    assert head.etag == found.etag
    assert dict(head.metadata) == dict(found.metadata) == {"ledger": "[]", "rows": "12"}


def test_metadata_names_come_back_in_lower_case(store: LakeStore) -> None:
    # S3 keeps user metadata names in lower case: code must read them so
    store.put(KEY, b"x", metadata={"File-Id": "london-1", "READING-SOURCE": "hes"})
    found = store.get(KEY)
    assert found is not None and dict(found.metadata) == {"file-id": "london-1", "reading-source": "hes"}


def test_the_etag_follows_the_content(store: LakeStore) -> None:
    store.put(KEY, b"first")
    first = store.head(KEY)
    store.put(KEY, b"first", metadata={"only": "metadata changed"})
    same = store.head(KEY)
    store.put(KEY, b"second")
    second = store.head(KEY)
    assert first is not None and same is not None and second is not None
    assert first.etag == same.etag != second.etag


def test_a_write_if_absent_creates_the_object(store: LakeStore) -> None:
    store.put(KEY, b"new partition", if_absent=True)
    found = store.get(KEY)
    assert found is not None and found.data == b"new partition"


def test_a_write_if_absent_loses_to_an_existing_object(store: LakeStore) -> None:
    # GIVEN a partition another merge created WHEN a write expects it absent THEN it loses the race
    store.put(KEY, b"the other merge")
    with pytest.raises(ConcurrentUpdate):
        store.put(KEY, b"mine", if_absent=True)
    found = store.get(KEY)
    assert found is not None and found.data == b"the other merge"


def test_a_write_if_match_replaces_the_object_read(store: LakeStore) -> None:
    store.put(KEY, b"v1")
    read = store.get(KEY)
    assert read is not None
    store.put(KEY, b"v2", if_match=read.etag)
    found = store.get(KEY)
    assert found is not None and found.data == b"v2"


def test_a_write_if_match_loses_to_a_change_since_the_read(store: LakeStore) -> None:
    # GIVEN an object read, then changed by another merge
    store.put(KEY, b"v1")
    read = store.get(KEY)
    assert read is not None
    store.put(KEY, b"v2 by another merge")
    # WHEN written on the strength of the read THEN the write loses and the other merge's bytes stay
    with pytest.raises(ConcurrentUpdate):
        store.put(KEY, b"v2 by me", if_match=read.etag)
    found = store.get(KEY)
    assert found is not None and found.data == b"v2 by another merge"


def test_a_write_if_match_loses_to_a_deletion_since_the_read(store: LakeStore) -> None:
    # GIVEN an object read, then deleted (S3 answers 404 NoSuchKey here, not 412)
    store.put(KEY, b"v1")
    read = store.get(KEY)
    assert read is not None
    store.delete([KEY])
    # WHEN written on the strength of the read THEN that too is a lost race: the merge reads again
    with pytest.raises(ConcurrentUpdate):
        store.put(KEY, b"v2", if_match=read.etag)
    assert store.get(KEY) is None


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 4, b"0123"), (4, 10, b"456789"), (8, 50, b"89"), (3, 3, b""), (5, 2, b"")],
    ids=["head", "tail", "past-the-end", "empty", "backwards"],
)
def test_a_range_read_returns_the_bytes_from_start_to_end(
    store: LakeStore, start: int, end: int, expected: bytes
) -> None:
    # GIVEN a 10-byte object WHEN [start, end) is read THEN those bytes come back, cut at the object's end
    store.put(KEY, b"0123456789")
    assert store.read_range(KEY, start, end) == expected


@pytest.mark.parametrize("data", [b"0123456789", b""], ids=["object", "empty-object"])
def test_a_range_starting_past_the_end_is_refused(store: LakeStore, data: bytes) -> None:
    # S3 refuses a range it cannot satisfy (416) rather than return a short read
    store.put(KEY, data)
    with pytest.raises(ClientError) as refused:
        store.read_range(KEY, 10, 20)
    assert refused.value.response["Error"]["Code"] == "InvalidRange"


def test_reading_an_absent_object_is_an_error(store: LakeStore) -> None:
    with pytest.raises(ClientError) as range_missing:
        store.read_range(KEY, 0, 10)
    with pytest.raises(ClientError) as stream_missing:
        list(store.stream(KEY))
    assert [
        range_missing.value.response["Error"]["Code"],
        stream_missing.value.response["Error"]["Code"],
    ] == [
        "NoSuchKey",
        "NoSuchKey",
    ]


def test_a_stream_yields_the_object_in_chunks_of_at_most_the_size_asked(store: LakeStore) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    store.put(KEY, data)
    chunks = list(store.stream(KEY, chunk_bytes=4096))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 4096


@pytest.mark.parametrize(
    "chunks",
    [[], [b"a,b\n", b"", b"c,d\n"], [b"x" * (PART_BYTES - 1), b"yy", b"z" * 1024]],
    ids=["empty", "small", "multipart"],
)
def test_an_uploaded_stream_is_the_concatenation_of_its_chunks(store: LakeStore, chunks: list[bytes]) -> None:
    # WHEN a stream is uploaded (past one part, S3 gets a multipart upload)
    size = store.upload_stream("uncompressed/hes-north/r-1.csv", iter(chunks), {"file-id": "hes-north-r-1"})
    # THEN the object is its concatenation, with the metadata, and its size is returned
    found = store.get("uncompressed/hes-north/r-1.csv")
    head = store.head("uncompressed/hes-north/r-1.csv")
    assert found is not None and head is not None
    assert found.data == b"".join(chunks)
    assert size == head.size == len(found.data)
    assert found.etag == head.etag
    assert dict(found.metadata) == {"file-id": "hes-north-r-1"}


@pytest.mark.parametrize("before_failure", [b"a,b\n", b"x" * (PART_BYTES + 10)], ids=["small", "multipart"])
def test_a_stream_that_fails_uploads_nothing(store: LakeStore, before_failure: bytes) -> None:
    def broken() -> Iterator[bytes]:
        yield before_failure
        raise ConnectionResetError("SFTP connection lost")

    # WHEN the source fails midway THEN the error surfaces and no partial object is left
    with pytest.raises(ConnectionResetError):
        store.upload_stream("uncompressed/hes-north/r-1.csv", broken())
    assert store.head("uncompressed/hes-north/r-1.csv") is None


def test_listing_a_prefix_gives_its_keys_in_order(store: LakeStore) -> None:
    for key in ("staging/f1/late/r-2.arrow", "staging/f1/ontime/r-1.arrow", "staging/f10/ontime/r-1.arrow"):
        store.put(key, b"x")
    store.put("manifests/f1.json", b"{}")
    assert store.list_keys("staging/f1/") == ["staging/f1/late/r-2.arrow", "staging/f1/ontime/r-1.arrow"]
    assert store.list_keys("nothing/") == []


def test_delete_removes_the_keys_given_and_ignores_absent_ones(store: LakeStore) -> None:
    for key in ("a/1", "a/2", "a/3"):
        store.put(key, b"x")
    store.delete(["a/1", "a/3", "a/never-written"])
    store.delete([])
    assert store.list_keys("a/") == ["a/2"]


# ---------------------------------------------------------------------------- integrations table
CONNECTION = {
    "hes_api_url": "http://hes.example",
    "sftp_host": "sftp.example",
    "sftp_host_key": "ssh-ed25519 AAAA",
    "sftp_secret_name": "hes-sftp",
}


def integration(integration_id: str = "hes-north", **overrides: Any) -> Integration:
    return Integration.new(integration_id, datetime(2023, 1, 2), 60, 15, **CONNECTION).model_copy(
        update=overrides
    )


@pytest.fixture(params=["memory", "dynamodb"])
def integrations(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IntegrationRepository]:
    """GIVEN the integrations table: the fake, or DynamoDB (moto) created as the stack creates it."""
    if request.param == "memory":
        yield MemoryIntegrations()
        return
    with moto_stack(monkeypatch, tables=["integrations"]) as aws:
        yield DynamoDbIntegrations(aws.clients.dynamodb, aws.table("integrations"))


def test_an_unknown_integration_is_none(integrations: IntegrationRepository) -> None:
    assert integrations.get("hes-north") is None


@pytest.mark.parametrize(
    "overrides",
    [{}, {"state": "failed", "failure_reason": "HES API refused", "enabled": False, "sftp_port": 2222}],
    ids=["new", "failed"],
)
def test_an_integration_reads_back_as_written(
    integrations: IntegrationRepository, overrides: dict[str, Any]
) -> None:
    written = integration(**overrides)
    integrations.put(written)
    assert integrations.get("hes-north") == written


def test_a_put_replaces_the_whole_integration(integrations: IntegrationRepository) -> None:
    # GIVEN a failed integration WHEN it is written back idle, without a reason THEN no reason is left
    integrations.put(integration(state="failed", failure_reason="boom"))
    integrations.put(integration(state="running"))
    found = integrations.get("hes-north")
    assert found is not None and (found.state, found.failure_reason) == ("running", None)


def test_all_integrations_come_in_id_order(integrations: IntegrationRepository) -> None:
    for integration_id in ("hes-south", "hes-east", "hes-north"):
        integrations.put(integration(integration_id))
    assert [found.integration_id for found in integrations.all()] == ["hes-east", "hes-north", "hes-south"]


def test_reset_sets_a_failed_integration_idle_and_keeps_its_window(
    integrations: IntegrationRepository,
) -> None:
    failed = integration(state="failed", failure_reason="SFTP host key mismatch")
    integrations.put(failed)
    assert integrations.reset("hes-north") is True
    assert integrations.get("hes-north") == failed.model_copy(
        update={"state": "idle", "failure_reason": None, "attempt": 1}
    )
    # AND each retry is a new attempt, whose executions have names of their own
    integrations.put(failed.model_copy(update={"attempt": 1}))
    assert integrations.reset("hes-north") is True
    found = integrations.get("hes-north")
    assert found is not None and found.attempt == 2


@pytest.mark.parametrize("state", ["idle", "running"])
def test_reset_leaves_an_integration_that_has_not_failed(
    integrations: IntegrationRepository, state: str
) -> None:
    integrations.put(integration(state=state))
    assert integrations.reset("hes-north") is False
    found = integrations.get("hes-north")
    assert found is not None and found.state == state


def test_reset_of_an_unknown_integration_is_refused_and_creates_nothing(
    integrations: IntegrationRepository,
) -> None:
    assert integrations.reset("hes-north") is False
    assert integrations.get("hes-north") is None


# ------------------------------------------------------------------------------------ lake events
@dataclass(frozen=True)
class Events:
    publisher: EventPublisher
    delivered: Callable[[], list[tuple[str, dict[str, Any]]]]  # (detail type, detail) the consumer got


@pytest.fixture(params=["memory", "eventbridge"])
def events(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    """GIVEN the lake's events: the fake, or EventBridge (moto) with the stack's late-reads rule."""
    if request.param == "memory":
        recording = RecordingPublisher()
        yield Events(recording, lambda: list(recording.events))
        return
    with moto_stack(monkeypatch, queues=["late_reads"], event_rules=["late_reads"]) as aws:

        def delivered() -> list[tuple[str, dict[str, Any]]]:
            envelopes = [json.loads(body) for body in aws.receive("late_reads")]
            assert {envelope["source"] for envelope in envelopes} <= {LAKE_EVENT_SOURCE}
            return [(envelope["detail-type"], envelope["detail"]) for envelope in envelopes]

        yield Events(EventBridgePublisher(aws.clients.events, LAKE_EVENT_SOURCE), delivered)


def test_a_late_reads_event_reaches_its_consumer_with_its_detail(events: Events) -> None:
    detail = {"file_id": "hes-north-r-1", "group_index": 3, "partitions": ["kw/2023-02-27/16"], "rows": 12}
    events.publisher.publish(LATE_READS_DETAIL_TYPE, detail)
    assert events.delivered() == [(LATE_READS_DETAIL_TYPE, detail)]
