"""HES event handlers: start_file_export (file-requests queue), run_export_job (export-jobs queue)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from chalice.test import Client

from meterflow.aws.task_runner import MalformedJob
from meterflow.core.errors import InvalidInput
from tests.support.inprocess_stack import InProcessStack, Invoke

JSON = {"Content-Type": "application/json"}
ONE_HOUR = {"start_date": "2023-01-02 00:00:00", "end_date": "2023-01-02 01:00:00"}
EXPORT_JOBS = {"export_jobs": "run_export_job"}


@dataclass(frozen=True)
class QueuedRequest:
    request_id: str
    message: str  # its message on the file-requests queue


@dataclass(frozen=True)
class WaitingExport:
    request_id: str
    execution_arn: str
    plan_job: str  # the PlanExport Task's message, with its task token


@pytest.fixture
def queued_request(client: Client, stack: InProcessStack) -> QueuedRequest:
    """A file request accepted by the API, its message on the file-requests queue."""
    accepted = client.http.post("/readings/file", headers=JSON, body=json.dumps(ONE_HOUR).encode())
    request_id = accepted.json_body["request_id"]
    message = stack.next_message("file_requests", lambda body: body.get("request_id") == request_id)
    return QueuedRequest(request_id, message)


@pytest.fixture
def waiting_export(queued_request: QueuedRequest, invoke: Invoke, stack: InProcessStack) -> WaitingExport:
    """An export workflow started for the request, waiting for its plan job to be answered."""
    invoke.sqs("start_file_export", queued_request.message)
    plan_job = stack.next_message(
        "export_jobs",
        lambda body: (
            body.get("job_type") == "plan_export"
            and body["payload"].get("request_id") == queued_request.request_id
        ),
    )
    return WaitingExport(
        queued_request.request_id, stack.execution_arn("hes_export", queued_request.request_id), plan_job
    )


def with_envelope(job: str, **changes: object) -> str:
    return json.dumps(json.loads(job) | changes)


# -- start_file_export -----------------------------------------------------------------------------------


def test_start_file_export_starts_the_export_workflow_once(
    queued_request: QueuedRequest, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the request's message is delivered
    invoke.sqs("start_file_export", queued_request.message)
    # THEN an export execution named after the request runs, and its first step marks the request running
    arn = stack.execution_arn("hes_export", queued_request.request_id)
    assert stack.execution_status(arn) == "RUNNING"
    stack.wait_until_entered(arn, "PlanExport")
    row = stack.item("file_requests", request_id=queued_request.request_id)
    assert row is not None and row["status"] == "running"
    # AND WHEN the same message is delivered again (SQS delivers at least once)
    invoke.sqs("start_file_export", queued_request.message)
    # THEN no second execution starts
    names = [execution["name"] for execution in stack.executions("hes_export")]
    assert names.count(queued_request.request_id) == 1


def test_start_file_export_fails_a_malformed_message_so_it_goes_to_the_dlq(
    invoke: Invoke, stack: InProcessStack
) -> None:
    before = len(stack.executions("hes_export"))
    # WHEN a message without a request id is delivered THEN the invocation fails (SQS retries, then DLQ)
    with pytest.raises(InvalidInput):
        invoke.sqs("start_file_export", json.dumps(ONE_HOUR))
    with pytest.raises(InvalidInput):
        invoke.sqs("start_file_export", "not json")
    # AND nothing started
    assert len(stack.executions("hes_export")) == before


# -- run_export_job --------------------------------------------------------------------------------------


def test_run_export_job_runs_plan_chunks_and_finalize_to_a_completed_file(
    waiting_export: WaitingExport, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN run_export_job answers every job the export workflow sends (plan, chunks, finalize)
    invoke.sqs("run_export_job", waiting_export.plan_job)
    status = invoke.until_ended(waiting_export.execution_arn, EXPORT_JOBS)
    # THEN the workflow succeeds through each of its task-token steps
    assert status == "SUCCEEDED"
    entered = stack.entered_states(waiting_export.execution_arn)
    assert {"PlanExport", "ExportChunk", "FinalizeExport", "MarkCompleted"} <= set(entered)
    # AND the request is completed with the hour's records, in a file in the exports bucket
    body = client.http.get(f"/readings/file?request_id={waiting_export.request_id}").json_body
    assert body["status"] == "completed"
    assert body["record_count"] > 0
    exports = stack.clients.s3.list_objects_v2(
        Bucket=stack.spec.bucket("hes_exports").name, Prefix=f"exports/{waiting_export.request_id}/"
    )
    assert [item["Key"] for item in exports.get("Contents", [])] == [f"exports/{body['sftp_location']}"]


def test_run_export_job_fails_the_task_of_an_unknown_job_type(
    waiting_export: WaitingExport, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN a job of a type no handler knows arrives with a live task token
    invoke.sqs("run_export_job", with_envelope(waiting_export.plan_job, job_type="reticulate_splines"))
    # THEN the task fails (SendTaskFailure), the workflow's Catch marks the request failed, naming why
    assert stack.wait_until_ended(waiting_export.execution_arn) == "FAILED"
    body = client.http.get(f"/readings/file?request_id={waiting_export.request_id}").json_body
    assert body["status"] == "failed"
    assert "UnknownJobType" in body["failure_reason"]


def test_run_export_job_fails_the_task_of_a_malformed_payload(
    waiting_export: WaitingExport, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the plan job arrives without its payload's fields but with its task token
    invoke.sqs("run_export_job", with_envelope(waiting_export.plan_job, payload={}))
    # THEN the domain's refusal is the task's failure, and the request fails
    assert stack.wait_until_ended(waiting_export.execution_arn) == "FAILED"
    body = client.http.get(f"/readings/file?request_id={waiting_export.request_id}").json_body
    assert body["status"] == "failed"
    assert "InvalidInput" in body["failure_reason"]


def test_run_export_job_raises_on_a_message_without_a_task_token(invoke: Invoke) -> None:
    # WHEN a message nobody can answer arrives THEN the invocation fails, so the message ends in the DLQ
    with pytest.raises(MalformedJob):
        invoke.sqs("run_export_job", json.dumps({"version": 1, "job_type": "plan_export", "payload": {}}))
    with pytest.raises(MalformedJob):
        invoke.sqs("run_export_job", "not json")


def test_run_export_job_drops_a_job_no_workflow_waits_for(
    waiting_export: WaitingExport, invoke: Invoke, stack: InProcessStack, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a job whose task token Step Functions does not know (its task timed out, its execution ended)
    expired = with_envelope(waiting_export.plan_job, task_token=str(uuid.uuid4()))
    # WHEN it is delivered
    with caplog.at_level("INFO", logger="meterflow"):
        invoke.sqs("run_export_job", expired)
    # THEN the handler completes quietly (the message is deleted: a retry of the task owns the work)
    logged = [record.getMessage() for record in caplog.records if record.name.startswith("meterflow.api")]
    assert logged[-1].endswith(": stale")
    # AND the workflow still waits for its own plan
    assert stack.execution_status(waiting_export.execution_arn) == "RUNNING"
