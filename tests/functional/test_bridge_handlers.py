"""On-premises bridge event handlers, along one historian backfill: run_bridge_job (bridge-jobs queue:
prepare and verify the upload), dispatch_site_jobs (site-dispatch queue: publish the site job) and
handle_site_messages (site-messages queue: what the site answers)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from chalice.test import Client

from meterflow.aws.task_runner import MalformedJob
from meterflow.core.errors import InvalidInput
from onprem_worker.contracts import (
    Channel,
    HeartbeatMessage,
    JobMessage,
    JobStatus,
    ProgressMessage,
    ResultMessage,
    topic,
)
from tests.support.backfills import TENANT, WORKER, Backfill, rule_delivery
from tests.support.inprocess_stack import InProcessStack, Invoke

UPLOADED = b"2023-01-02 00:00:00.000000,2023-01-02 00:00:00.000000,meter-1,readings,1,2,0.9,3,4,230\n"


@pytest.fixture
def site_job(backfill: Backfill, invoke: Invoke, stack: InProcessStack) -> str:
    """The upload prepared: the workflow's RunOnSite message on the site-dispatch queue."""
    invoke.sqs("run_bridge_job", backfill.prepare_job)
    return stack.next_message("site_dispatch", lambda body: body["payload"].get("job_id") == backfill.job_id)


@pytest.fixture
def dispatched(site_job: str, backfill: Backfill, invoke: Invoke, stack: InProcessStack) -> JobMessage:
    """The site job published to the worker: what the site received."""
    invoke.sqs("dispatch_site_jobs", site_job)
    return next(
        job
        for name, payload in reversed(stack.published_to_sites())
        if name == topic(TENANT, WORKER, Channel.JOBS)
        and (job := JobMessage.parse(payload)).job_id == backfill.job_id
    )


def uploaded(job: JobMessage, data: bytes = UPLOADED) -> None:
    """What the site does: PUT the historian's readings to the presigned URL (no AWS credentials)."""
    payload = job.payload
    requests.put(
        payload["upload_url"], data=data, headers=payload["upload_headers"], timeout=10
    ).raise_for_status()


def result(job: JobMessage, status: JobStatus = JobStatus.SUCCEEDED, **fields: Any) -> str:
    """The site's result of ``job``, as the site-messages rule delivers it."""
    message = ResultMessage(
        job_id=job.job_id,
        task_token=job.task_token,
        attempt=job.attempt,
        status=status,
        finished_at=datetime.now(UTC),
        **fields,
    )
    return rule_delivery(Channel.RESULTS, message.encode())


@pytest.fixture
def verify_job(dispatched: JobMessage, invoke: Invoke, stack: InProcessStack) -> str:
    """The site uploaded and answered; the workflow's VerifyUpload message on the bridge-jobs queue."""
    uploaded(dispatched)
    invoke.sqs("handle_site_messages", result(dispatched, output={"bytes": len(UPLOADED), "rows": 1}))
    return stack.next_message(
        "bridge_jobs",
        lambda body: body["job_type"] == "verify_backfill" and body["payload"]["job_id"] == dispatched.job_id,
    )


def job_status(client: Client, job_id: str) -> dict[str, object]:
    return dict(client.http.get(f"/jobs/{job_id}").json_body)


# -- run_bridge_job ---------------------------------------------------------------------------------------


def test_run_bridge_job_prepares_the_upload_and_the_workflow_sends_the_site_job(
    backfill: Backfill, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the prepare job is delivered
    invoke.sqs("run_bridge_job", backfill.prepare_job)
    # THEN the workflow runs the job on site: its message carries a presigned PUT into the inbound
    # bucket's uncompressed/ area, where the S3 notification starts the lake's ingestion
    stack.wait_until_entered(backfill.execution_arn, "RunOnSite")
    message = json.loads(
        stack.next_message("site_dispatch", lambda body: body["payload"].get("job_id") == backfill.job_id)
    )
    site_payload = message["payload"]["job_payload"]
    inbound = stack.spec.bucket("inbound").name
    assert site_payload["upload_url"].startswith(
        f"https://{inbound}.s3.amazonaws.com/uncompressed/historian/"
    )
    assert (site_payload["start"], site_payload["end"]) == ("2023-01-02T00:00:00", "2023-01-02T01:00:00")


def test_run_bridge_job_verifies_the_upload_and_completes_the_backfill(
    verify_job: str, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the verify job is delivered (the object holds what the site reported)
    invoke.sqs("run_bridge_job", verify_job)
    # THEN the backfill's workflow succeeds and the job is done, with the site's output
    assert stack.wait_until_ended(backfill.execution_arn) == "SUCCEEDED"
    job = job_status(client, backfill.job_id)
    assert job["status"] == "succeeded"
    assert job["output"] == {"bytes": len(UPLOADED), "rows": 1}


def test_run_bridge_job_fails_the_backfill_whose_upload_is_not_what_the_site_reported(
    dispatched: JobMessage, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # GIVEN a site that reports more bytes than it uploaded
    uploaded(dispatched)
    invoke.sqs("handle_site_messages", result(dispatched, output={"bytes": len(UPLOADED) + 1}))
    verify = stack.next_message("bridge_jobs", lambda body: body["job_type"] == "verify_backfill")
    # WHEN the verify job is delivered
    invoke.sqs("run_bridge_job", verify)
    # THEN the task fails, and the workflow's Catch records the job as failed, naming why
    assert stack.wait_until_ended(backfill.execution_arn) == "FAILED"
    job = job_status(client, backfill.job_id)
    assert job["status"] == "failed"
    assert str(job["failure_reason"]).startswith("IntegrityError")


def test_run_bridge_job_raises_on_a_message_without_a_task_token(invoke: Invoke) -> None:
    with pytest.raises(MalformedJob):
        invoke.sqs(
            "run_bridge_job", json.dumps({"version": 1, "job_type": "prepare_backfill", "payload": {}})
        )


# -- dispatch_site_jobs -----------------------------------------------------------------------------------


def test_dispatch_site_jobs_publishes_the_job_on_its_workers_topic_with_its_token(
    site_job: str, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    token = json.loads(site_job)["task_token"]
    # WHEN the site job is delivered
    invoke.sqs("dispatch_site_jobs", site_job)
    # THEN it is published on the worker's jobs topic, with the workflow's token and attempt
    published = [
        JobMessage.parse(payload)
        for name, payload in stack.published_to_sites()
        if name == topic(TENANT, WORKER, Channel.JOBS)
    ]
    (job,) = [job for job in published if job.job_id == backfill.job_id]
    assert (job.task_token, job.attempt, job.job_type) == (token, 0, "historian.export")
    # AND the job is dispatched; its record keeps the token's digest, never the token
    row = stack.item("bridge_jobs", job_id=backfill.job_id)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("dispatched", "1")
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(row)


def test_dispatch_site_jobs_fails_the_task_of_a_site_job_it_cannot_address(
    site_job: str, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    envelope = json.loads(site_job)
    unaddressable = envelope | {"payload": envelope["payload"] | {"worker": "Not A Worker"}}
    # WHEN a site job for a worker whose topic cannot exist arrives with the live token
    invoke.sqs("dispatch_site_jobs", json.dumps(unaddressable))
    # THEN nothing is published, the task fails and the workflow records the job as failed
    assert stack.wait_until_ended(backfill.execution_arn) == "FAILED"
    job = job_status(client, backfill.job_id)
    assert job["status"] == "failed"
    assert str(job["failure_reason"]).startswith("MalformedJob")
    assert all(backfill.job_id.encode() not in payload for _, payload in stack.published_to_sites())


def test_dispatch_site_jobs_raises_on_a_message_without_a_task_token(invoke: Invoke) -> None:
    with pytest.raises(InvalidInput):
        invoke.sqs("dispatch_site_jobs", json.dumps({"version": 1, "job_type": "site_job", "payload": {}}))
    with pytest.raises(InvalidInput):
        invoke.sqs("dispatch_site_jobs", "not json")


# -- handle_site_messages ---------------------------------------------------------------------------------


def test_handle_site_messages_answers_the_task_with_the_sites_result(
    dispatched: JobMessage, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    uploaded(dispatched)
    # WHEN the site's result arrives through the site-messages rule
    invoke.sqs("handle_site_messages", result(dispatched, output={"bytes": len(UPLOADED), "rows": 1}))
    # THEN the job is uploaded and the workflow moves on to verifying the upload
    assert job_status(client, backfill.job_id)["status"] == "uploaded"
    stack.wait_until_entered(backfill.execution_arn, "VerifyUpload")
    # AND a second delivery of the same result (MQTT QoS 1, SQS) does not answer the task again
    invoke.sqs("handle_site_messages", result(dispatched, output={"bytes": len(UPLOADED), "rows": 1}))
    assert stack.entered_states(backfill.execution_arn).count("VerifyUpload") == 1


def test_handle_site_messages_records_progress_and_forwards_heartbeats(
    dispatched: JobMessage,
    backfill: Backfill,
    client: Client,
    invoke: Invoke,
    stack: InProcessStack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = datetime.now(UTC)
    progress = ProgressMessage(
        job_id=dispatched.job_id, attempt=dispatched.attempt, fraction=0.5, rows=12, at=now
    )
    beat = HeartbeatMessage(job_id=dispatched.job_id, task_token=dispatched.task_token, at=now)
    # WHEN the site reports progress and beats
    with caplog.at_level("INFO", logger="meterflow"):
        invoke.sqs("handle_site_messages", rule_delivery(Channel.PROGRESS, progress.encode()))
        invoke.sqs("handle_site_messages", rule_delivery(Channel.HEARTBEATS, beat.encode()))
    # THEN the job shows how far it is, the beat went to Step Functions (SendTaskHeartbeat) ...
    job = job_status(client, backfill.job_id)
    assert (job["fraction"], job["rows"]) == (0.5, 12)
    outcomes = [
        record.getMessage().split(": ", 1)[-1]
        for record in caplog.records
        if record.name.startswith("meterflow.api")
    ]
    assert [outcome.split()[0] for outcome in outcomes] == ["progress", "heartbeat"]
    # ... and the workflow still waits for the site
    assert stack.execution_status(backfill.execution_arn) == "RUNNING"


def test_handle_site_messages_fails_the_task_of_a_failed_site_job(
    dispatched: JobMessage, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the site reports the job failed
    failed = result(dispatched, JobStatus.FAILED, error="HistorianUnavailable", cause="connection refused")
    invoke.sqs("handle_site_messages", failed)
    # THEN the task fails with the site's error, and the workflow records the job as failed
    assert stack.wait_until_ended(backfill.execution_arn) == "FAILED"
    job = job_status(client, backfill.job_id)
    assert job["status"] == "failed"
    assert str(job["failure_reason"]).startswith("HistorianUnavailable")


def test_handle_site_messages_drops_or_rejects_what_is_not_the_jobs_sites_answer(
    dispatched: JobMessage, backfill: Backfill, client: Client, invoke: Invoke, stack: InProcessStack
) -> None:
    succeeded = ResultMessage(
        job_id=dispatched.job_id,
        task_token=dispatched.task_token,
        status=JobStatus.SUCCEEDED,
        output={"bytes": 1},
        finished_at=datetime.now(UTC),
    )
    forged_token = succeeded.model_copy(update={"task_token": "forged"})
    poison = {
        "not an envelope": "not json",
        "an envelope without its payload": json.dumps({"topic": topic(TENANT, WORKER, Channel.RESULTS)}),
        "another site's result": rule_delivery(Channel.RESULTS, succeeded.encode(), worker="plant-2"),
        "a result on a cloud-to-site channel": rule_delivery(Channel.JOBS, succeeded.encode()),
        "a result with another token": rule_delivery(Channel.RESULTS, forged_token.encode()),
        "a result that is not a contract": rule_delivery(Channel.RESULTS, b'{"job_id": "x"}'),
    }
    for what, body in poison.items():
        # WHEN it is delivered THEN the handler completes (retrying cannot help: no DLQ round trips) ...
        invoke.sqs("handle_site_messages", body)
        # ... and the job still waits for its site
        assert job_status(client, backfill.job_id)["status"] == "dispatched", what
    assert stack.execution_status(backfill.execution_arn) == "RUNNING"
    assert "VerifyUpload" not in stack.entered_states(backfill.execution_arn)
