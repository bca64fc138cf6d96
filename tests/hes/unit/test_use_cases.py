"""The HES use cases (``meterflow.hes.domain.services``) on the in-memory ports.

The fakes behave as the boto3 adapters do against AWS (``tests/hes/adapters/test_port_contracts.py``
holds them to it), so these tests say what the deployed HES does with a request, a queue message
and an export's jobs, without a cloud.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

import pytest

from meterflow.core.errors import ExportIntegrityError, InvalidInput, NotFound
from meterflow.hes.domain import services
from meterflow.hes.domain.export import ExportStatus, FileRequest
from meterflow.hes.domain.fleet import Fleet
from tests.support.memory_hes import MemoryFileRequests, MemoryObjectStore, MemoryQueue, MemoryWorkflow

NOW = datetime(2023, 2, 28, 9, 30, 0, 250000)
BODY = {"start_date": "2023-02-27 16:00:00", "end_date": "2023-02-27 18:00:00"}
UNKNOWN_ID = "5d1e2f3a-0000-4000-8000-000000000000"


@pytest.fixture
def requests() -> MemoryFileRequests:
    return MemoryFileRequests(clock=lambda: NOW)


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def workflow() -> MemoryWorkflow:
    return MemoryWorkflow()


@pytest.fixture
def store() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture
def accepted(requests: MemoryFileRequests, queue: MemoryQueue) -> FileRequest:
    """GIVEN a file request accepted by ``POST /readings/file``."""
    return services.request_export(BODY, requests, queue, lambda: NOW)


@pytest.fixture
def message(accepted: FileRequest, queue: MemoryQueue) -> str:
    """GIVEN the file-requests queue's message for it."""
    [body] = queue.receive()
    return body


# ------------------------------------------------------------------------------ request_export
def test_an_accepted_request_is_recorded_queued_and_handed_to_the_queue(
    accepted: FileRequest, requests: MemoryFileRequests, queue: MemoryQueue
) -> None:
    # THEN it is recorded as queued, at the clock's time
    assert requests.get(accepted.request_id) == accepted
    assert (accepted.status, accepted.created_at) == (ExportStatus.QUEUED, NOW)
    # AND one message carries its id and window to the queue
    assert [json.loads(body) for body in queue.messages] == [
        {
            "request_id": accepted.request_id,
            "start_date": "2023-02-27 16:00:00.000000",
            "end_date": "2023-02-27 18:00:00.000000",
            "window_by": "time",
        }
    ]


def test_identical_requests_are_two_exports(requests: MemoryFileRequests, queue: MemoryQueue) -> None:
    # WHEN the same body is posted twice THEN each post is its own request
    first = services.request_export(BODY, requests, queue, lambda: NOW)
    second = services.request_export(BODY, requests, queue, lambda: NOW)
    assert first.request_id != second.request_id
    assert len(queue.messages) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (["2023-02-27", "2023-02-28"], "body"),
        ({"start_date": "2023-02-27 16:00:00"}, "end_date"),
        ({"start_date": "2023-02-27 16:00:00", "end_date": "2023-02-27 15:00:00"}, "end_date"),
        ({"start_date": "2023-01-01", "end_date": "2024-01-03"}, "end_date"),  # more than 366 days
        ({**BODY, "colour": "blue"}, "colour"),
        ({**BODY, "window_by": "soon"}, "window_by"),
        ({**BODY, "window_by": None}, "window_by"),
        ({"start_date": "27/02/2023", "end_date": "2023-02-28"}, "start_date"),
    ],
    ids=["not-an-object", "no-end", "end-first", "too-long", "unknown", "bad-mode", "null-mode", "bad-date"],
)
def test_a_bad_body_is_refused_with_400_and_leaves_no_trace(
    body: object, field: str, requests: MemoryFileRequests, queue: MemoryQueue
) -> None:
    # WHEN a malformed body is posted
    with pytest.raises(InvalidInput) as refused:
        services.request_export(body, requests, queue, lambda: NOW)
    # THEN it is a 400 naming the field, and nothing was recorded or queued
    assert (refused.value.status_code, refused.value.field) == (400, field)
    assert requests.items == {}
    assert queue.messages == []


def test_a_request_that_cannot_be_queued_is_marked_failed(requests: MemoryFileRequests) -> None:
    # GIVEN a queue out of reach
    queue = MemoryQueue(fail_with=ConnectionError("queue unreachable"))
    # WHEN a request is posted THEN the error reaches the caller (a 5xx)
    with pytest.raises(ConnectionError):
        services.request_export(BODY, requests, queue, lambda: NOW)
    # AND the recorded request says why it will never run, rather than stay queued forever
    [request] = requests.items.values()
    assert (request.status, request.failure_reason) == (
        ExportStatus.FAILED,
        "could not enqueue the request: queue unreachable",
    )


# ---------------------------------------------------------------------------------- get_export
def test_get_export_answers_the_requests_status(accepted: FileRequest, requests: MemoryFileRequests) -> None:
    assert services.get_export(accepted.request_id, requests).status_body() == {
        "request_id": accepted.request_id,
        "status": "queued",
        "start_date": "2023-02-27 16:00:00.000000",
        "end_date": "2023-02-27 18:00:00.000000",
        "window_by": "time",
    }


def test_get_export_finds_a_request_id_written_in_capitals(
    accepted: FileRequest, requests: MemoryFileRequests
) -> None:
    assert services.get_export(accepted.request_id.upper(), requests).request_id == accepted.request_id


def test_a_completed_export_says_where_its_file_is(
    accepted: FileRequest, requests: MemoryFileRequests
) -> None:
    # GIVEN the export workflow completed the request
    requests.complete(accepted.request_id, f"{accepted.request_id}/run-1-part-r-00000.gz", 4000)
    # THEN its status names the file and its record count
    body = services.get_export(accepted.request_id, requests).status_body()
    assert (body["status"], body["sftp_location"], body["record_count"]) == (
        "completed",
        f"{accepted.request_id}/run-1-part-r-00000.gz",
        4000,
    )


def test_a_failed_export_says_why(accepted: FileRequest, requests: MemoryFileRequests) -> None:
    requests.fail(accepted.request_id, "ExportIntegrityError: chunk 3 of 4 is missing")
    body = services.get_export(accepted.request_id, requests).status_body()
    assert (body["status"], body["failure_reason"]) == (
        "failed",
        "ExportIntegrityError: chunk 3 of 4 is missing",
    )


def test_an_unknown_request_is_a_404(requests: MemoryFileRequests) -> None:
    with pytest.raises(NotFound) as missing:
        services.get_export(UNKNOWN_ID, requests)
    assert (missing.value.status_code, missing.value.field) == (404, "request_id")


@pytest.mark.parametrize("raw", [None, "", "not-a-uuid", 42], ids=["none", "empty", "not-a-uuid", "number"])
def test_a_malformed_request_id_is_a_400(raw: object, requests: MemoryFileRequests) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.get_export(raw, requests)
    assert (refused.value.status_code, refused.value.field) == (400, "request_id")


# ------------------------------------------------------------------------------- submit_export
def test_a_queued_request_starts_its_export_execution(
    message: str, accepted: FileRequest, requests: MemoryFileRequests, workflow: MemoryWorkflow
) -> None:
    # WHEN the queue delivers its message
    started = services.submit_export(message, requests, workflow)
    # THEN the request is submitted and one execution, named after it, exports its window
    assert started is True
    assert requests.items[accepted.request_id].status is ExportStatus.SUBMITTED
    [(name, workflow_input)] = workflow.started
    assert name == accepted.request_id
    assert json.loads(workflow_input) == json.loads(message)


def test_a_redelivered_message_starts_no_second_execution(
    message: str, accepted: FileRequest, requests: MemoryFileRequests, workflow: MemoryWorkflow
) -> None:
    # GIVEN the message was handled once and its execution has not yet moved the request on
    services.submit_export(message, requests, workflow)
    # WHEN SQS delivers it again
    again = services.submit_export(message, requests, workflow)
    # THEN still one execution runs. Step Functions answers the same start of a running execution
    # as a success (StartExecution is idempotent for standard workflows), hence True.
    assert again is True
    assert len(workflow.started) == 1
    assert requests.items[accepted.request_id].status is ExportStatus.SUBMITTED


@pytest.mark.parametrize("status", [ExportStatus.RUNNING, ExportStatus.COMPLETED, ExportStatus.FAILED])
def test_a_message_for_a_request_past_submission_starts_nothing(
    message: str,
    accepted: FileRequest,
    requests: MemoryFileRequests,
    workflow: MemoryWorkflow,
    status: ExportStatus,
) -> None:
    # GIVEN the request is running, completed or failed
    requests.advance(accepted.request_id, status, [ExportStatus.QUEUED])
    # WHEN a late copy of its message arrives THEN nothing starts and the request stays as it is
    assert services.submit_export(message, requests, workflow) is False
    assert workflow.started == []
    assert requests.items[accepted.request_id].status is status


def test_a_message_for_an_unknown_request_starts_nothing(
    message: str, requests: MemoryFileRequests, workflow: MemoryWorkflow
) -> None:
    # GIVEN the request's record is gone (expired) WHEN its message arrives THEN nothing starts
    requests.items.clear()
    assert services.submit_export(message, requests, workflow) is False
    assert workflow.started == []


def test_a_request_whose_execution_already_ended_is_not_started_again(
    message: str, accepted: FileRequest, requests: MemoryFileRequests, workflow: MemoryWorkflow
) -> None:
    # GIVEN its execution started and ended before it moved the request on (it was aborted)
    services.submit_export(message, requests, workflow)
    workflow.finish(accepted.request_id, "ABORTED")
    # WHEN the message is redelivered THEN Step Functions refuses a second execution of that name
    assert services.submit_export(message, requests, workflow) is False
    assert len(workflow.started) == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        json.dumps({"request_id": "nope", **BODY}),
        json.dumps({"request_id": UNKNOWN_ID, "start_date": BODY["start_date"]}),
    ],
    ids=["not-json", "empty", "bad-id", "no-end"],
)
def test_a_malformed_message_is_refused_and_changes_nothing(
    body: str, accepted: FileRequest, requests: MemoryFileRequests, workflow: MemoryWorkflow
) -> None:
    # WHEN a malformed message arrives THEN it is refused (it goes to the dead-letter queue)
    with pytest.raises(InvalidInput):
        services.submit_export(body, requests, workflow)
    # AND nothing was submitted or started
    assert requests.items[accepted.request_id].status is ExportStatus.QUEUED
    assert workflow.started == []


def test_a_workflow_that_cannot_start_leaves_the_request_to_the_redelivery(
    message: str, accepted: FileRequest, requests: MemoryFileRequests
) -> None:
    # GIVEN Step Functions refuses the start (throttled, unreachable)
    broken = MemoryWorkflow(fail_with=ConnectionError("states unreachable"))
    # WHEN the message is handled THEN the error fails the message, for SQS to deliver it again
    with pytest.raises(ConnectionError):
        services.submit_export(message, requests, broken)
    # AND the request is submitted, not failed: the redelivery may still start it
    assert requests.items[accepted.request_id].status is ExportStatus.SUBMITTED
    workflow = MemoryWorkflow()
    assert services.submit_export(message, requests, workflow) is True
    assert [name for name, _ in workflow.started] == [accepted.request_id]


# ------------------------------------------------------------------------ plan, chunks, finalize
def plan_state(message: str, fleet: Fleet, started_at: str = "2023-02-28T09:30:00.250Z") -> dict[str, Any]:
    """The plan job the export workflow runs for the message's request (see hes_export.asl.json)."""
    submission = json.loads(message)
    payload = {**submission, "execution_name": submission["request_id"], "execution_start_time": started_at}
    return services.plan(payload, fleet, 1_500, 1_000)


def export_chunks(state: dict[str, Any], fleet: Fleet, store: MemoryObjectStore) -> None:
    for chunk in state["chunks"]:
        services.export_chunk({"plan": state["chunk_context"], "chunk": chunk}, fleet, store)


def finalize(state: dict[str, Any], store: MemoryObjectStore) -> dict[str, Any]:
    return services.finalize_export(
        {"plan": state["chunk_context"], "chunk_count": len(state["chunks"])}, store
    )


def test_an_export_runs_from_its_plan_to_one_file(
    message: str, fleet: Fleet, store: MemoryObjectStore
) -> None:
    # GIVEN the plan of a two-hour window (500 meters every 15 minutes, a few reads missing: 3 chunks)
    state = plan_state(message, fleet)
    records = state["record_count"]
    assert (3_900 < records <= 4_000, state["chunk_count"]) == (True, 3)
    # WHEN every chunk is exported and the file finalised
    export_chunks(state, fleet, store)
    result = finalize(state, store)
    # THEN the file holds every record once, one CSV line each, where the status will say it is
    context = state["chunk_context"]
    data = store.read(context["object_key"])
    assert len(gzip.decompress(data).splitlines()) == records
    assert result == {"sftp_location": context["sftp_location"], "record_count": records, "bytes": len(data)}
    # AND the chunks are cleaned up
    assert [key for key in store.objects if key.startswith(context["staging_prefix"])] == []


def test_a_finalize_retried_after_success_answers_the_same(
    message: str, fleet: Fleet, store: MemoryObjectStore
) -> None:
    # GIVEN a finalised export (its chunks already deleted)
    state = plan_state(message, fleet)
    export_chunks(state, fleet, store)
    first = finalize(state, store)
    # WHEN the finalize job runs again (its worker died before answering) THEN the same file is reported
    assert finalize(state, store) == first


def test_a_missing_chunk_fails_the_export_and_ships_nothing(
    message: str, fleet: Fleet, store: MemoryObjectStore
) -> None:
    # GIVEN one chunk never stored
    state = plan_state(message, fleet)
    export_chunks(state, fleet, store)
    del store.objects[f"{state['chunk_context']['staging_prefix']}chunk-000001.csv.gz"]
    # WHEN finalised THEN the export fails and no file exists
    with pytest.raises(ExportIntegrityError, match="chunk 1 of 3"):
        finalize(state, store)
    assert store.head(state["chunk_context"]["object_key"]) is None


def test_chunks_that_do_not_add_up_fail_the_export(
    message: str, fleet: Fleet, store: MemoryObjectStore
) -> None:
    # GIVEN a chunk object that holds fewer records than the plan counted
    state = plan_state(message, fleet)
    export_chunks(state, fleet, store)
    key = f"{state['chunk_context']['staging_prefix']}chunk-000002.csv.gz"
    store.put(key, store.read(key), 10)
    # WHEN finalised THEN the export fails rather than ship a file that does not add up
    with pytest.raises(ExportIntegrityError, match=f"the plan counted {state['record_count']}"):
        finalize(state, store)
    assert store.head(state["chunk_context"]["object_key"]) is None


def test_a_window_not_yet_begun_exports_an_empty_file(
    message: str, fleet: Fleet, store: MemoryObjectStore
) -> None:
    # GIVEN an execution that started before the window did: no reading exists yet
    state = plan_state(message, fleet, started_at="2023-02-27T15:00:00Z")
    assert (state["record_count"], state["chunks"]) == (0, [])
    # WHEN finalised THEN the file is an empty gzip, counted as such
    result = finalize(state, store)
    assert gzip.decompress(store.read(state["chunk_context"]["object_key"])) == b""
    assert result["record_count"] == 0
