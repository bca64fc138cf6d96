"""The on-premises bridge, cloud side: starting backfills, dispatching site jobs, and turning what
sites publish into task-token answers, with forged and stale messages changing nothing."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from meterflow.bridge.domain import jobs as bridge
from meterflow.bridge.domain.jobs import BridgeJobStatus, token_digest
from meterflow.core.errors import Conflict, IntegrityError, InvalidInput, NotFound
from onprem_worker.contracts import (
    CancelMessage,
    Channel,
    HeartbeatMessage,
    JobMessage,
    ProgressMessage,
    ResultMessage,
    topic,
)
from tests.support.memory_bridge import (
    FakeHead,
    FakePresigner,
    MemoryJobs,
    RecordingCallbacks,
    RecordingPublisher,
    RecordingWorkflow,
)

NOW = datetime(2026, 12, 2, 6, 0)
TOKEN = "token-of-attempt-1"
BACKFILL = {
    "tenant": "north",
    "worker": "plant-1",
    "start": "2023-03-01T00:00:00",
    "end": "2023-03-02T00:00:00",
}


@pytest.fixture
def jobs() -> MemoryJobs:
    return MemoryJobs()


@pytest.fixture
def callbacks() -> RecordingCallbacks:
    return RecordingCallbacks()


@pytest.fixture
def job_id(jobs: MemoryJobs) -> str:
    return bridge.start_backfill(BACKFILL, jobs, RecordingWorkflow(), NOW).job_id


def dispatch_body(job_id: str, token: str = TOKEN, **payload: Any) -> str:
    return json.dumps(
        {
            "version": 1,
            "job_type": "site_job",
            "task_token": token,
            "payload": {
                "job_id": job_id,
                "tenant": "north",
                "worker": "plant-1",
                "job_type": "historian.export",
                "heartbeat_seconds": 60,
                "job_payload": {"start": "2023-03-01T00:00:00"},
                **payload,
            },
        }
    )


@pytest.fixture
def dispatched(job_id: str, jobs: MemoryJobs, callbacks: RecordingCallbacks) -> str:
    assert (
        bridge.dispatch_site_job(dispatch_body(job_id), jobs, RecordingPublisher(), callbacks, NOW)
        == "dispatched"
    )
    return job_id


def site(channel: Channel, tenant: str = "north", worker: str = "plant-1") -> str:
    return topic(tenant, worker, channel)


def result(job_id: str, token: str = TOKEN, **fields: Any) -> bytes:
    defaults: dict[str, Any] = {"status": "succeeded", "output": {"rows": 3, "bytes": 120}}
    return ResultMessage(job_id=job_id, task_token=token, finished_at=NOW, **(defaults | fields)).encode()


# ----------------------------------------------------------------------------------- backfills
def test_a_backfill_is_recorded_and_its_execution_named_after_the_job() -> None:
    # GIVEN a valid backfill request
    jobs, workflow = MemoryJobs(), RecordingWorkflow()
    # WHEN it is started
    job = bridge.start_backfill(BACKFILL, jobs, workflow, NOW)
    # THEN the job is queued for that site and window, and one execution carries the request
    assert (job.status, job.tenant, job.worker) == (BridgeJobStatus.QUEUED, "north", "plant-1")
    assert jobs.get(job.job_id) == job
    [(name, workflow_input)] = workflow.started
    assert name == job.job_id
    assert json.loads(workflow_input) == {
        "job_id": job.job_id,
        "tenant": "north",
        "worker": "plant-1",
        "meter_ids": None,
        "start": "2023-03-01T00:00:00",
        "end": "2023-03-02T00:00:00",
    }
    assert "token_sha256" not in job.status_body()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tenant": "North!"}, "tenant"),
        ({"worker": ""}, "worker"),
        ({"end": "2023-02-28T00:00:00"}, "end"),
        ({"end": "2023-05-01T00:00:00"}, "end"),
        ({"meter_ids": []}, "meter_ids"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_backfill_requests_name_the_field(change: dict[str, Any], field: str) -> None:
    # GIVEN a request with one bad field WHEN started THEN a 400 names that field and nothing starts
    workflow = RecordingWorkflow()
    with pytest.raises(InvalidInput) as caught:
        bridge.start_backfill(BACKFILL | change, MemoryJobs(), workflow, NOW)
    assert caught.value.field == field
    assert workflow.started == []


def test_a_backfill_too_large_for_a_workflow_is_refused_before_anything_is_written() -> None:
    # GIVEN a request naming more meters than a workflow's input can carry (Step Functions: 256 KiB)
    jobs, workflow = MemoryJobs(), RecordingWorkflow()
    meter_ids = [str(uuid.UUID(int=index)) for index in range(10_000)]
    # WHEN it is started
    with pytest.raises(InvalidInput) as caught:
        bridge.start_backfill(BACKFILL | {"meter_ids": meter_ids}, jobs, workflow, NOW)
    # THEN a 400 names meter_ids, and no job was recorded (none left queued for ever)
    assert caught.value.field == "meter_ids"
    assert (jobs.jobs, workflow.started) == ({}, [])


def test_a_backfill_whose_workflow_cannot_start_is_marked_failed() -> None:
    # GIVEN a workflow that refuses every start (throttled, misconfigured)
    jobs = MemoryJobs()
    workflow = RecordingWorkflow(fail_with=RuntimeError("ThrottlingException"))
    # WHEN a backfill is started
    with pytest.raises(RuntimeError):
        bridge.start_backfill(BACKFILL, jobs, workflow, NOW)
    # THEN its job is failed with the reason, not left queued for ever
    [job] = list(jobs.jobs.values())
    assert job is not None and job.status is BridgeJobStatus.FAILED
    assert "ThrottlingException" in (job.failure_reason or "")


def _no_lookup(job_id: str) -> None:
    raise AssertionError(f"looked up {job_id[:40]!r}")


@pytest.mark.parametrize("job_id", ["x" * 3000, "not-a-uuid", str(uuid.uuid4()).upper(), ""])
def test_a_job_id_that_cannot_be_ours_is_not_found_without_a_lookup(job_id: str) -> None:
    # GIVEN an id no job can have (ours are lower-case uuid4), and a table that must not be asked:
    # DynamoDB answers a key over 2 KB with a ValidationException, which would be a 500
    jobs = MemoryJobs()
    jobs.get = _no_lookup  # type: ignore[method-assign]
    # WHEN asking for it THEN it is a 404 naming job_id
    with pytest.raises(NotFound) as caught:
        bridge.get_job(job_id, jobs)
    assert caught.value.field == "job_id"


def test_prepare_presigns_an_upload_into_the_lakes_landing_zone(job_id: str) -> None:
    # GIVEN a job WHEN its upload is prepared
    prepared = bridge.prepare_backfill(
        {"job_id": job_id, "tenant": "north", "worker": "plant-1", "meter_ids": None}
        | {"start": "2023-03-01T00:00:00", "end": "2023-03-02T00:00:00"},
        FakePresigner(),
    )
    # THEN the site gets a PUT URL under uncompressed/ (the lake ingests it) with the file's metadata
    assert prepared["object_key"] == f"uncompressed/historian/north/{job_id}.csv"
    payload = prepared["job_payload"]
    assert payload["upload_url"].startswith(
        f"https://inbound.example/uncompressed/historian/north/{job_id}.csv"
    )
    assert payload["upload_headers"]["x-amz-meta-file-format"] == "hes_wide"
    assert payload["upload_headers"]["x-amz-meta-reading-source"] == "historian:north"


# ------------------------------------------------------------------------------------ dispatch
def test_dispatch_publishes_the_job_on_its_workers_jobs_topic(
    job_id: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a site job message from the workflow
    publisher = RecordingPublisher()
    # WHEN dispatched
    outcome = bridge.dispatch_site_job(dispatch_body(job_id), jobs, publisher, callbacks, NOW)
    # THEN one job message with the task token goes to north/plant-1's jobs topic, and no answer yet
    assert outcome == "dispatched"
    [(topic_name, payload)] = publisher.published
    assert topic_name == "meterflow/north/plant-1/jobs"
    message = JobMessage.parse(payload)
    assert (message.job_id, message.task_token, message.heartbeat_seconds) == (job_id, TOKEN, 60)
    assert callbacks.calls == []
    # AND the job remembers the attempt by its token's digest, never the token
    job = jobs.get(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.token_sha256) == (
        BridgeJobStatus.DISPATCHED,
        1,
        token_digest(TOKEN),
    )


def test_a_publish_failure_fails_the_task_at_once(
    job_id: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a broker that refuses the publish WHEN dispatched THEN the task fails now, never hangs
    outcome = bridge.dispatch_site_job(
        dispatch_body(job_id), jobs, RecordingPublisher(fail_with="not connected"), callbacks, NOW
    )
    assert outcome == "publish_failed"
    [(kind, token, (error, cause))] = callbacks.calls
    assert (kind, token, error) == ("failure", TOKEN, "DispatchFailed")
    assert "not connected" in cause


def test_a_malformed_site_job_with_a_token_is_reported_as_a_failure(
    job_id: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a site job whose worker name is invalid WHEN dispatched THEN nothing is published, the task fails
    publisher = RecordingPublisher()
    outcome = bridge.dispatch_site_job(
        dispatch_body(job_id, worker="Bad Name"), jobs, publisher, callbacks, NOW
    )
    assert outcome == "malformed"
    assert publisher.published == []
    assert callbacks.calls[0][2][0] == "MalformedJob"


def test_a_dispatch_message_without_a_token_goes_to_the_dlq(
    jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a message nobody can answer WHEN dispatched THEN it raises (the queue's DLQ keeps it)
    with pytest.raises(InvalidInput, match="malformed"):
        bridge.dispatch_site_job(
            '{"version": 1, "job_type": "site_job"}', jobs, RecordingPublisher(), callbacks, NOW
        )


# -------------------------------------------------------------------------------- site messages
def test_a_succeeded_result_answers_the_task_with_its_output(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a dispatched job WHEN its worker reports success
    outcome = bridge.handle_site_message(site(Channel.RESULTS), result(dispatched), jobs, callbacks, NOW)
    # THEN SendTaskSuccess carries the output and the job is uploaded
    assert outcome.outcome == "succeeded"
    assert callbacks.calls == [("success", TOKEN, {"rows": 3, "bytes": 120})]
    job = jobs.get(dispatched)
    assert job is not None and job.status is BridgeJobStatus.UPLOADED


@pytest.mark.parametrize(("status", "error"), [("failed", "OperationalError"), ("cancelled", "JobCancelled")])
def test_a_failed_or_cancelled_result_is_a_task_failure_never_a_success(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks, status: str, error: str
) -> None:
    # GIVEN a worker whose job raised (or was cancelled)
    payload = result(dispatched, status=status, output=None, error=error, cause="database is locked")
    # WHEN its result arrives THEN SendTaskFailure carries the error class and message
    bridge.handle_site_message(site(Channel.RESULTS), payload, jobs, callbacks, NOW)
    assert callbacks.calls == [("failure", TOKEN, (error, "database is locked"))]
    # AND the job keeps the reason but stays open: the Task's Retry may run it again
    job = jobs.get(dispatched)
    assert job is not None and job.status is BridgeJobStatus.DISPATCHED
    assert job.failure_reason == f"{error}: database is locked"


def test_a_forged_result_without_the_attempts_token_changes_nothing(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a dispatched job and a result carrying a token that is not the attempt's
    before = jobs.get(dispatched)
    # WHEN it arrives on the right site's topic
    outcome = bridge.handle_site_message(
        site(Channel.RESULTS), result(dispatched, token="guessed-token"), jobs, callbacks, NOW
    )
    # THEN it is rejected: no answer to Step Functions, the job unchanged
    assert outcome.outcome == "rejected"
    assert callbacks.calls == []
    assert jobs.get(dispatched) == before


def test_a_result_from_another_tenants_site_changes_nothing(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN the right token published on another tenant's topic (a compromised site of tenant south)
    outcome = bridge.handle_site_message(
        site(Channel.RESULTS, tenant="south"), result(dispatched), jobs, callbacks, NOW
    )
    # THEN it is rejected before anything is answered
    assert (outcome.outcome, callbacks.calls) == ("rejected", [])


def test_a_result_of_an_earlier_attempt_is_rejected_after_the_retry(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN the task retried (heartbeat timeout) with a new token
    bridge.dispatch_site_job(
        dispatch_body(dispatched, token="token-of-attempt-2"), jobs, RecordingPublisher(), callbacks, NOW
    )
    # WHEN the first attempt's result arrives late THEN it is rejected, and the second's is accepted
    assert (
        bridge.handle_site_message(site(Channel.RESULTS), result(dispatched), jobs, callbacks, NOW).outcome
        == "rejected"
    )
    second = result(dispatched, token="token-of-attempt-2")
    assert (
        bridge.handle_site_message(site(Channel.RESULTS), second, jobs, callbacks, NOW).outcome == "succeeded"
    )
    assert [call[:2] for call in callbacks.calls] == [("success", "token-of-attempt-2")]
    job = jobs.get(dispatched)
    assert job is not None and job.attempts == 2


def test_an_earlier_tries_answer_cannot_complete_a_retry_that_kept_the_token(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a Task retried under the same token (LocalStack and moto keep it across retries)
    bridge.dispatch_site_job(dispatch_body(dispatched, attempt=1), jobs, RecordingPublisher(), callbacks, NOW)
    # WHEN the first try's answer (say, WorkerRestarted after a crash) arrives
    stale = result(dispatched, status="failed", output=None, error="WorkerRestarted", cause="restart")
    outcome = bridge.handle_site_message(site(Channel.RESULTS), stale, jobs, callbacks, NOW)
    # THEN it is rejected; only the second try's own answer completes the task
    assert outcome.outcome == "rejected"
    second = result(dispatched, attempt=1)
    assert (
        bridge.handle_site_message(site(Channel.RESULTS), second, jobs, callbacks, NOW).outcome == "succeeded"
    )
    assert [call[0] for call in callbacks.calls] == ["success"]


def test_a_duplicate_result_reaches_step_functions_once(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a failure result delivered twice (QoS 1 is at least once)
    failed = result(dispatched, status="failed", output=None, error="WorkerRestarted", cause="restart")
    first = bridge.handle_site_message(site(Channel.RESULTS), failed, jobs, callbacks, NOW)
    second = bridge.handle_site_message(site(Channel.RESULTS), failed, jobs, callbacks, NOW)
    # THEN only the first answers the task: a kept token's retry cannot be failed by the copy
    assert (first.outcome, second.outcome) == ("failed", "rejected")
    assert len(callbacks.calls) == 1


def test_a_result_step_functions_did_not_take_is_answered_by_its_redelivery(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN SendTaskSuccess fails once (throttled), so the SQS message will be delivered again
    calls = {"count": 0}

    def flaky(task_token: str) -> Any:
        calls["count"] += 1
        if calls["count"] == 1:
            raise_on_answer = callbacks(task_token)
            raise_on_answer.succeed = _throttled  # type: ignore[method-assign]
            return raise_on_answer
        return callbacks(task_token)

    # WHEN the result arrives, fails to reach Step Functions, and arrives again
    with pytest.raises(RuntimeError):
        bridge.handle_site_message(site(Channel.RESULTS), result(dispatched), jobs, flaky, NOW)
    again = bridge.handle_site_message(site(Channel.RESULTS), result(dispatched), jobs, flaky, NOW)
    # THEN the redelivery answers the task (not refused as a duplicate) and the job is uploaded
    assert again.outcome == "succeeded"
    assert callbacks.calls == [("success", TOKEN, {"rows": 3, "bytes": 120})]
    job = jobs.get(dispatched)
    assert job is not None and job.status is BridgeJobStatus.UPLOADED


def _throttled(output: dict[str, Any]) -> None:
    raise RuntimeError("ThrottlingException")


def test_heartbeats_and_progress_reach_the_task_and_the_job(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN a running job WHEN its worker beats and reports progress
    beat = HeartbeatMessage(job_id=dispatched, task_token=TOKEN, at=NOW).encode()
    progress = ProgressMessage(job_id=dispatched, fraction=0.5, rows=1_000, at=NOW).encode()
    assert (
        bridge.handle_site_message(site(Channel.HEARTBEATS), beat, jobs, callbacks, NOW).outcome
        == "heartbeat"
    )
    assert (
        bridge.handle_site_message(site(Channel.PROGRESS), progress, jobs, callbacks, NOW).outcome
        == "progress"
    )
    # THEN SendTaskHeartbeat was called and GET /jobs shows the progress
    assert callbacks.calls == [("heartbeat", TOKEN, None)]
    body = bridge.get_job(dispatched, jobs).status_body()
    assert (body["status"], body["fraction"], body["rows"]) == ("running", 0.5, 1_000)


def test_a_result_for_a_token_nobody_waits_for_is_dropped(
    dispatched: str, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    # GIVEN the workflow gave up on the attempt WHEN its result arrives THEN it is stale, not an error
    callbacks.stale.add(TOKEN)
    assert (
        bridge.handle_site_message(site(Channel.RESULTS), result(dispatched), jobs, callbacks, NOW).outcome
        == "stale"
    )


@pytest.mark.parametrize(
    ("topic_name", "payload"),
    [
        ("meterflow/north/plant-1/results", b"not json"),
        ("meterflow/north/plant-1/jobs", b"{}"),  # a cloud-to-site channel
        ("other/north/plant-1/results", b"{}"),
        ("meterflow/north/plant-1/results", b'{"version": 2, "job_id": "x"}'),
    ],
)
def test_malformed_site_messages_are_rejected(
    topic_name: str, payload: bytes, jobs: MemoryJobs, callbacks: RecordingCallbacks
) -> None:
    assert bridge.handle_site_message(topic_name, payload, jobs, callbacks, NOW).outcome == "rejected"
    assert callbacks.calls == []


def test_rule_envelopes_round_trip_and_bad_ones_are_refused() -> None:
    # GIVEN a message as the IoT rule (or local bridge) forwards it WHEN decoded THEN topic and bytes survive
    body = bridge.site_message_for_rule("meterflow/north/plant-1/results", b"\x00{json}")
    assert bridge.site_message_from_rule(body) == ("meterflow/north/plant-1/results", b"\x00{json}")
    with pytest.raises(InvalidInput):
        bridge.site_message_from_rule('{"topic": "t", "payload": "%%%"}')


# -------------------------------------------------------------------------------- verify, cancel
def test_verify_accepts_the_upload_the_site_reported_and_refuses_another(
    dispatched: str, jobs: MemoryJobs
) -> None:
    key = f"uncompressed/historian/north/{dispatched}.csv"
    payload = {"job_id": dispatched, "object_key": key, "site_output": {"rows": 3, "bytes": 120}}
    # GIVEN an object of another size THEN verification fails loudly
    with pytest.raises(IntegrityError, match="120"):
        bridge.verify_backfill(payload, FakeHead({key: 99}), jobs, NOW)
    # GIVEN the reported size THEN the job succeeds
    assert bridge.verify_backfill(payload, FakeHead({key: 120}), jobs, NOW)["rows"] == 3
    job = jobs.get(dispatched)
    assert job is not None and job.status is BridgeJobStatus.SUCCEEDED


def test_cancel_stops_the_execution_and_tells_the_site(dispatched: str, jobs: MemoryJobs) -> None:
    # GIVEN a running job WHEN cancelled
    workflow, publisher = RecordingWorkflow(), RecordingPublisher()
    job = bridge.cancel_job(dispatched, jobs, workflow, publisher, NOW + timedelta(seconds=5))
    # THEN its execution is stopped, the site's cancel topic gets the job id, and the job is cancelled
    assert workflow.stopped == [(dispatched, "JobCancelled", "cancelled by request")]
    [(topic_name, payload)] = publisher.published
    assert topic_name == "meterflow/north/plant-1/cancel"
    assert CancelMessage.parse(payload).job_id == dispatched
    assert job.status is BridgeJobStatus.CANCELLED
    # AND a second cancel is a conflict
    with pytest.raises(Conflict):
        bridge.cancel_job(dispatched, jobs, workflow, publisher, NOW)
