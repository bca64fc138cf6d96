"""The worker side of the task-token protocol: failures are failures, stale tokens are dropped."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from meterflow.aws.task_runner import MalformedJob, run_job
from meterflow.core.errors import InvalidInput


class RecordingStepFunctions:
    """Records task-token calls; can be told to reject a token as timed out."""

    def __init__(self, stale: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stale = stale
        self.lock = threading.Lock()

    def _record(self, name: str, **kwargs: Any) -> None:
        with self.lock:
            self.calls.append((name, kwargs))
        if self.stale:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}}, name)

    def send_task_success(self, **kwargs: Any) -> None:
        self._record("success", **kwargs)

    def send_task_failure(self, **kwargs: Any) -> None:
        self._record("failure", **kwargs)

    def send_task_heartbeat(self, **kwargs: Any) -> None:
        self._record("heartbeat", **kwargs)


def envelope(job_type: str = "echo", payload: dict[str, Any] | None = None) -> str:
    return json.dumps({"version": 1, "job_type": job_type, "task_token": "token-1", "payload": payload or {}})


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload}


def reject(payload: dict[str, Any]) -> dict[str, Any]:
    raise InvalidInput("start_date is not a date", field="start_date")


def crash(payload: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("disk full")


def slow(payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.35)
    return {}


HANDLERS = {"echo": echo, "reject": reject, "crash": crash, "slow": slow}


def test_a_successful_job_reports_its_output() -> None:
    sfn = RecordingStepFunctions()
    assert run_job(envelope(payload={"a": 1}), HANDLERS, sfn, 10) == "succeeded"
    assert sfn.calls == [("success", {"taskToken": "token-1", "output": json.dumps({"echo": {"a": 1}})})]


@pytest.mark.parametrize(("job_type", "error"), [("reject", "InvalidInput"), ("crash", "WorkerError")])
def test_a_job_that_raises_is_reported_as_a_failure_never_a_success(job_type: str, error: str) -> None:
    sfn = RecordingStepFunctions()
    assert run_job(envelope(job_type), HANDLERS, sfn, 10) == "failed"
    assert [name for name, _ in sfn.calls] == ["failure"]
    assert sfn.calls[0][1]["error"] == error
    assert sfn.calls[0][1]["cause"]


def test_unknown_job_types_and_malformed_payloads_with_a_token_fail_the_task() -> None:
    sfn = RecordingStepFunctions()
    run_job(envelope("teleport"), HANDLERS, sfn, 10)
    run_job(json.dumps({"version": 2, "task_token": "token-1"}), HANDLERS, sfn, 10)
    assert [(name, kw["error"]) for name, kw in sfn.calls] == [
        ("failure", "UnknownJobType"),
        ("failure", "MalformedJob"),
    ]


def test_a_message_without_a_token_is_left_for_the_dead_letter_queue() -> None:
    with pytest.raises(MalformedJob):
        run_job("{not json", HANDLERS, RecordingStepFunctions(), 10)


def test_long_jobs_send_heartbeats_while_they_run() -> None:
    sfn = RecordingStepFunctions()
    run_job(envelope("slow"), HANDLERS, sfn, 0.1)
    names = [name for name, _ in sfn.calls]
    assert names.count("heartbeat") >= 2
    assert names[-1] == "success"


def test_an_answer_to_a_token_the_workflow_gave_up_on_is_dropped() -> None:
    assert run_job(envelope(), HANDLERS, RecordingStepFunctions(stale=True), 10) == "stale"
