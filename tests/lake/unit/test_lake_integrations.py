"""Integrations: windows, scheduling, gunzip of the HES file and the S3 ingest trigger."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

import pytest

from meterflow.core.errors import InvalidInput
from meterflow.lake.domain.integrations import (
    Integration,
    gunzip_stream,
    ingest_requests_from_s3_event,
    request_hes_file,
    schedule_due,
)
from tests.support.memory_lake import MemoryLakeStore

FIRST = datetime(2023, 1, 2, 0, 0)
CONNECTION = {
    "hes_api_url": "http://hes.example",
    "sftp_host": "sftp.example",
    "sftp_host_key": "ssh-ed25519 AAAA",
    "sftp_secret_name": "hes-sftp",
}


def make_integration(integration_id: str = "hes-north", **overrides: Any) -> Integration:
    integration = Integration.new(integration_id, FIRST, 60, 15, **CONNECTION)
    return integration.model_copy(update=overrides)


@pytest.fixture
def integration() -> Integration:
    return make_integration()


# ------------------------------------------------------------------------------------ integration
def test_new_integration_has_its_first_window(integration: Integration) -> None:
    # GIVEN an hourly integration settling 15 minutes, starting at 2023-01-02 00:00
    # THEN its first window is that hour and it becomes eligible 15 minutes after it ends
    assert integration.window_start == "2023-01-02 00:00:00.000000"
    assert integration.window_end == "2023-01-02 01:00:00.000000"
    assert integration.next_eligible == "2023-01-02 01:15:00.000000"
    assert (integration.enabled, integration.state) == (True, "idle")


def test_next_window_follows_the_current_one(integration: Integration) -> None:
    # WHEN the next window is computed THEN it starts where this one ends
    assert integration.next_window() == {
        "next_window_start": "2023-01-02 01:00:00.000000",
        "next_window_end": "2023-01-02 02:00:00.000000",
        "next_eligible": "2023-01-02 02:15:00.000000",
    }


@pytest.mark.parametrize(
    ("overrides", "now", "due"),
    [
        ({}, datetime(2023, 1, 2, 1, 14, 59), False),  # still settling
        ({}, datetime(2023, 1, 2, 1, 15), True),  # exactly eligible
        ({}, datetime(2023, 1, 3), True),
        ({"enabled": False}, datetime(2023, 1, 3), False),
        ({"state": "running"}, datetime(2023, 1, 3), False),
        ({"state": "failed"}, datetime(2023, 1, 3), False),
    ],
)
def test_is_due_only_when_enabled_idle_and_eligible(
    overrides: dict[str, Any], now: datetime, due: bool
) -> None:
    # GIVEN an integration in some state WHEN asked at ``now`` THEN it is due only if enabled, idle, eligible
    assert make_integration(**overrides).is_due(now) is due


class RecordingHes:
    """A HES API that records the file requests it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, str]] = []

    def request_file(self, base_url: str, start_date: str, end_date: str, window_by: str) -> str:
        self.requests.append((base_url, start_date, end_date, window_by))
        return "r-1"

    def file_status(self, base_url: str, request_id: str) -> dict[str, Any]:
        raise AssertionError("not called")


class OneIntegration:
    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def get(self, integration_id: str) -> Integration | None:
        return self.integration if integration_id == self.integration.integration_id else None


@pytest.mark.parametrize("window_by", ["arrival_time", "time"])
def test_file_request_selects_the_window_as_the_integration_says(window_by: str) -> None:
    # GIVEN an integration pulling by arrival time (the default: an incremental pull) or by reading time
    integration = make_integration(window_by=window_by)
    hes = RecordingHes()
    # WHEN the run's window is requested from the HES
    answer = request_hes_file(
        {
            "integration_id": integration.integration_id,
            "window_start": integration.window_start,
            "window_end": integration.window_end,
        },
        OneIntegration(integration),  # type: ignore[arg-type]
        hes,
    )
    # THEN the HES is asked for that window, selected that way, and the next window follows
    assert hes.requests == [
        ("http://hes.example", integration.window_start, integration.window_end, window_by)
    ]
    assert answer["request_id"] == "r-1"
    assert answer["next_window_start"] == integration.window_end


def test_integrations_pull_what_the_hes_received_by_default(integration: Integration) -> None:
    # GIVEN a new integration THEN it selects by arrival time, so late reads come with later windows
    assert integration.window_by == "arrival_time"
    # AND an unknown selection is refused
    with pytest.raises(InvalidInput, match="window_by"):
        Integration.parse({**integration.model_dump(), "window_by": "received"})


def test_execution_name_joins_id_and_window_start(integration: Integration) -> None:
    # GIVEN an integration WHEN its execution is named THEN the name is stable for the window
    assert integration.execution_name() == "hes-north-20230102T0000"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("integration_id", "Bad_ID"),
        ("frequency_minutes", 5),
        ("settle_minutes", -1),
        ("window_start", None),
    ],
)
def test_invalid_integration_names_the_field(integration: Integration, field: str, value: Any) -> None:
    # GIVEN an integration record with one bad field
    record = integration.model_dump() | {field: value}
    # WHEN parsed THEN InvalidInput names that field
    with pytest.raises(InvalidInput) as raised:
        Integration.parse(record)
    assert raised.value.field == field
    assert field in raised.value.message


def test_missing_field_is_named() -> None:
    # GIVEN a record without its SFTP host WHEN parsed THEN the error names it
    record = make_integration().model_dump()
    del record["sftp_host"]
    with pytest.raises(InvalidInput) as raised:
        Integration.parse(record)
    assert raised.value.field == "sftp_host"


def test_new_rejects_a_too_frequent_schedule() -> None:
    # GIVEN a 5-minute frequency (below the 15-minute minimum) WHEN created THEN it is refused
    with pytest.raises(InvalidInput) as raised:
        Integration.new("hes-north", FIRST, 5, 15, **CONNECTION)
    assert raised.value.field == "frequency_minutes"


# ------------------------------------------------------------------------------------------ gunzip
@pytest.fixture
def payload() -> bytes:
    return b"".join(f"line {i},{i * 7 % 13}\n".encode() for i in range(3_000))


@pytest.fixture
def multi_member(payload: bytes) -> bytes:
    third = len(payload) // 3
    parts = [payload[:third], payload[third : 2 * third], payload[2 * third :]]
    return b"".join(gzip.compress(part) for part in parts)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("chunk_size", [1, 7, 10, 64, 1_000, 10**6])
def test_gunzip_multi_member_at_any_chunk_boundary(
    payload: bytes, multi_member: bytes, chunk_size: int
) -> None:
    # GIVEN three gzip members concatenated, delivered in chunks of some size
    # WHEN decompressed as a stream
    out = b"".join(gunzip_stream(chunked(multi_member, chunk_size)))
    # THEN the output is the whole original payload
    assert out == payload


def test_gunzip_with_empty_chunks(payload: bytes, multi_member: bytes) -> None:
    # GIVEN chunks interleaved with empty ones WHEN decompressed THEN nothing is lost
    chunks = [piece for chunk in chunked(multi_member, 333) for piece in (b"", chunk)]
    assert b"".join(gunzip_stream(chunks)) == payload


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_gunzip_truncated_stream_is_invalid_input(multi_member: bytes, cut: int) -> None:
    # GIVEN a gzip stream missing its last bytes
    truncated = multi_member[:-cut]
    # WHEN decompressed THEN the truncation is reported as invalid input
    with pytest.raises(InvalidInput, match="truncated"):
        b"".join(gunzip_stream(chunked(truncated, 50)))


def test_gunzip_of_nothing_is_nothing() -> None:
    assert list(gunzip_stream([])) == []


# -------------------------------------------------------------------------------- ingest trigger
@pytest.fixture
def inbound() -> MemoryLakeStore:
    return MemoryLakeStore("inbound")


def s3_event(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def created(
    key: str, event_name: str = "ObjectCreated:Put", sequencer: str = "0055AED6DCD90281E5"
) -> dict[str, Any]:
    return {
        "eventName": event_name,
        "eventTime": "2023-01-02T06:10:00.000Z",
        "s3": {"bucket": {"name": "inbound"}, "object": {"key": key, "sequencer": sequencer}},
    }


def test_url_encoded_keys_are_decoded(inbound: MemoryLakeStore) -> None:
    # GIVEN an object whose key has a space and '=' and a notification with the key URL-encoded
    inbound.put("uncompressed/x/a b=.csv", b"data\n")
    # WHEN the notification is turned into ingest requests
    starts = ingest_requests_from_s3_event(s3_event(created("uncompressed/x/a+b%3D.csv")), inbound)
    # THEN the request names the decoded key, with key-derived defaults
    assert len(starts) == 1
    name, body = starts[0]
    request = json.loads(body)
    assert request["key"] == "uncompressed/x/a b=.csv"
    assert request["file_id"] == "x-a-b-"
    assert request["bucket"] == "inbound"
    assert request["file_format"] == "hes_wide"
    assert request["reading_source"] == "hes"
    assert request["arrive_time"] == "2023-01-02T06:10:00.000Z"
    assert (request["window_start"], request["window_end"]) == ("", "")
    assert name.startswith("x-a-b--")
    assert len(name) <= 80


def test_london_keys_default_to_the_london_format(inbound: MemoryLakeStore) -> None:
    # GIVEN a London file without metadata WHEN announced THEN its format and source come from its key
    inbound.put("uncompressed/london/block_0.csv", b"data\n")
    [(_, body)] = ingest_requests_from_s3_event(s3_event(created("uncompressed/london/block_0.csv")), inbound)
    request = json.loads(body)
    assert (request["file_format"], request["reading_source"]) == ("london_lcl", "london-lcl")


def test_object_metadata_wins_over_key_defaults(inbound: MemoryLakeStore) -> None:
    # GIVEN an object written by the input adapter with its ingest metadata
    metadata = {
        "file-id": "hes-north-req1",
        "file-format": "hes_wide",
        "reading-source": "hes-north",
        "window-start": "2023-01-02 00:00:00.000000",
        "window-end": "2023-01-02 01:00:00.000000",
        "arrive-time": "2023-01-02T01:20:00",
    }
    inbound.put("uncompressed/hes-north/req1.csv", b"data\n", metadata=metadata)
    # WHEN announced
    [(name, body)] = ingest_requests_from_s3_event(
        s3_event(created("uncompressed/hes-north/req1.csv")), inbound
    )
    # THEN the request carries the metadata
    request = json.loads(body)
    assert request == {
        "file_id": "hes-north-req1",
        "bucket": "inbound",
        "key": "uncompressed/hes-north/req1.csv",
        "file_format": "hes_wide",
        "reading_source": "hes-north",
        "window_start": "2023-01-02 00:00:00.000000",
        "window_end": "2023-01-02 01:00:00.000000",
        "arrive_time": "2023-01-02T01:20:00",
    }
    assert name.startswith("hes-north-req1-")


def test_redelivered_notification_maps_to_the_same_name(inbound: MemoryLakeStore) -> None:
    # GIVEN one object and the same notification delivered twice
    inbound.put("uncompressed/x/a.csv", b"data\n")
    body = s3_event(created("uncompressed/x/a.csv"))
    # WHEN both are turned into requests THEN the execution names are equal (Step Functions refuses the 2nd)
    assert ingest_requests_from_s3_event(body, inbound) == ingest_requests_from_s3_event(body, inbound)
    # AND a new upload (new sequencer) gets a new name
    other = ingest_requests_from_s3_event(s3_event(created("uncompressed/x/a.csv", sequencer="99")), inbound)
    assert other[0][0] != ingest_requests_from_s3_event(body, inbound)[0][0]


def test_test_event_and_other_event_types_are_ignored(inbound: MemoryLakeStore) -> None:
    # GIVEN the S3 test event and a removal notification for an existing object
    inbound.put("uncompressed/x/a.csv", b"data\n")
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "inbound"})
    removed = s3_event(created("uncompressed/x/a.csv", event_name="ObjectRemoved:Delete"))
    # WHEN turned into requests THEN nothing starts
    assert ingest_requests_from_s3_event(test_event, inbound) == []
    assert ingest_requests_from_s3_event(removed, inbound) == []


def test_objects_that_no_longer_exist_are_skipped(inbound: MemoryLakeStore) -> None:
    # GIVEN a notification for two objects of which one was deleted since
    inbound.put("uncompressed/x/kept.csv", b"data\n")
    body = s3_event(created("uncompressed/x/gone.csv"), created("uncompressed/x/kept.csv"))
    # WHEN turned into requests THEN only the existing object is ingested
    starts = ingest_requests_from_s3_event(body, inbound)
    assert [json.loads(request)["key"] for _, request in starts] == ["uncompressed/x/kept.csv"]


def test_non_json_notification_is_invalid_input(inbound: MemoryLakeStore) -> None:
    with pytest.raises(InvalidInput):
        ingest_requests_from_s3_event("not json", inbound)


# ------------------------------------------------------------------------------------ scheduling
class FakeRepository:
    def __init__(self, integrations: list[Integration]) -> None:
        self.integrations = {integration.integration_id: integration for integration in integrations}

    def get(self, integration_id: str) -> Integration | None:
        return self.integrations.get(integration_id)

    def put(self, integration: Integration) -> None:
        self.integrations[integration.integration_id] = integration

    def all(self) -> list[Integration]:
        return list(self.integrations.values())

    def reset(self, integration_id: str) -> bool:
        return False


class FakeWorkflow:
    """Refuses a second start of an execution name, like Step Functions."""

    def __init__(self, already_running: set[str] | None = None) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.names = set(already_running or ())

    def start(self, execution_name: str, workflow_input: str) -> bool:
        if execution_name in self.names:
            return False
        self.names.add(execution_name)
        self.started.append((execution_name, json.loads(workflow_input)))
        return True


@pytest.fixture
def repository() -> FakeRepository:
    return FakeRepository(
        [
            make_integration("due-a"),
            make_integration("disabled", enabled=False),
            make_integration("running", state="running"),
            make_integration("failed", state="failed"),
            make_integration("not-yet", next_eligible="2023-01-05 00:00:00.000000"),
            make_integration("due-b"),
        ]
    )


def test_schedule_starts_only_enabled_idle_due_integrations(repository: FakeRepository) -> None:
    # GIVEN integrations in every state WHEN scheduled on 2023-01-03
    workflow = FakeWorkflow()
    started = schedule_due(repository, workflow, datetime(2023, 1, 3))
    # THEN only the enabled, idle, due ones start, each with its id as input
    assert started == ["due-a-20230102T0000", "due-b-20230102T0000"]
    assert [workflow_input for _, workflow_input in workflow.started] == [
        {"integration_id": "due-a"},
        {"integration_id": "due-b"},
    ]


def test_schedule_reports_only_executions_actually_started(repository: FakeRepository) -> None:
    # GIVEN an execution for due-a's window already exists
    workflow = FakeWorkflow(already_running={"due-a-20230102T0000"})
    # WHEN scheduled THEN the refused start is not reported
    assert schedule_due(repository, workflow, datetime(2023, 1, 3)) == ["due-b-20230102T0000"]


def test_a_refused_start_is_logged_not_silent(
    repository: FakeRepository, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an execution for due-a's window already exists
    workflow = FakeWorkflow(already_running={"due-a-20230102T0000"})
    # WHEN scheduled
    schedule_due(repository, workflow, datetime(2023, 1, 3))
    # THEN the refusal is a warning naming the integration and the execution
    [record] = [record for record in caplog.records if record.levelname == "WARNING"]
    assert "due-a" in record.getMessage() and "due-a-20230102T0000" in record.getMessage()


def test_a_retried_integration_starts_again_under_a_new_name(repository: FakeRepository) -> None:
    # GIVEN due-a failed in its window, its execution name is taken, and it was retried (attempt 1)
    failed = make_integration("due-a", state="failed")
    workflow = FakeWorkflow(already_running={failed.execution_name()})
    retried = failed.model_copy(update={"state": "idle", "attempt": 1})
    # WHEN scheduled
    started = schedule_due(FakeRepository([retried]), workflow, datetime(2023, 1, 3))
    # THEN the same window starts again, in an execution named after the attempt
    assert started == ["due-a-20230102T0000-r1"]


def test_schedule_before_eligibility_starts_nothing(repository: FakeRepository) -> None:
    # GIVEN it is still within the settle time WHEN scheduled THEN nothing starts
    workflow = FakeWorkflow()
    assert schedule_due(repository, workflow, datetime(2023, 1, 2, 1, 0)) == []
    assert workflow.started == []
