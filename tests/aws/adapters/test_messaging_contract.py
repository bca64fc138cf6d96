"""SQS queues, Step Functions executions and task tokens: the fakes and ``meterflow.aws.messaging`` on moto.

Every feature's ports use these adapters (the HES's file-requests queue and export workflow, the
bridge's backfill workflow and task-token answers), and every feature's unit tests use the fakes
(``tests/support/memory_hes.py``, ``tests/support/memory_bridge.py``). Each test below is one
behaviour the domains rely on, run against both.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from botocore.exceptions import ClientError
from moto.core.responses import EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse

from meterflow.aws.messaging import SqsMessageQueue, StepFunctionsWorkflow, TaskTokenCallbacks
from meterflow.bridge.ports import TaskCallbacks
from meterflow.core.errors import StaleTaskToken
from meterflow.hes.ports import MessageQueue
from tests.support.memory_bridge import RecordingCallbacks
from tests.support.memory_hes import MemoryQueue, MemoryWorkflow
from tests.support.moto_inprocess import MotoStack, moto_stack

INPUT = json.dumps({"request_id": "0b9c6f3e-2c1a-4b8e-9d1f-6a7e5c4b3a21", "window_by": "time"})


# ----------------------------------------------------------------------------------------- queue
@dataclass(frozen=True)
class Queue:
    queue: MessageQueue
    received: Callable[[], list[str]]  # every message now waiting, each received once


@pytest.fixture(params=["memory", "sqs"])
def queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """GIVEN the file-requests queue: the fake, or SQS (moto) created as the stack creates it."""
    if request.param == "memory":
        memory = MemoryQueue()
        yield Queue(memory, memory.receive)
        return
    with moto_stack(monkeypatch, queues=["file_requests"]) as aws:
        yield Queue(
            SqsMessageQueue(aws.clients.sqs, aws.queue_urls["file_requests"]),
            lambda: aws.receive("file_requests"),
        )


def test_a_message_arrives_as_it_was_sent(queue: Queue) -> None:
    body = json.dumps({"request_id": "r-1", "note": "été, 東京, \U0001f600"}, ensure_ascii=False)
    queue.queue.send(body)
    assert queue.received() == [body]


def test_every_message_sent_arrives_once(queue: Queue) -> None:
    # WHEN three messages are sent THEN each arrives once (a standard queue keeps no order)
    bodies = [json.dumps({"request_id": f"r-{index}"}) for index in range(3)]
    for body in bodies:
        queue.queue.send(body)
    assert sorted(queue.received()) == sorted(bodies)
    assert queue.received() == []


# -------------------------------------------------------------------------------------- workflow
class Workflow(Protocol):
    def start(self, execution_name: str, workflow_input: str) -> bool: ...

    def stop(self, execution_name: str, error: str, cause: str) -> None: ...


@dataclass(frozen=True)
class StateMachine:
    workflow: Workflow
    execution: Callable[[str], tuple[str, str] | None]  # (status, input) of the execution so named
    count: Callable[[], int]  # how many executions there are


def _moto_state_machine(aws: MotoStack) -> StateMachine:
    client = aws.clients.stepfunctions
    arn = aws.state_machine_arn("hes_export")
    workflow = StepFunctionsWorkflow(client, arn)

    def execution(name: str) -> tuple[str, str] | None:
        try:
            found = client.describe_execution(executionArn=workflow.execution_arn(name))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return found["status"], found["input"]

    return StateMachine(
        workflow, execution, lambda: len(client.list_executions(stateMachineArn=arn)["executions"])
    )


@pytest.fixture(params=["memory", "stepfunctions"])
def machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[StateMachine]:
    """GIVEN the export state machine: the fake, or Step Functions (moto, executions not run)."""
    if request.param == "memory":
        memory = MemoryWorkflow()

        def execution(name: str) -> tuple[str, str] | None:
            found = memory.executions.get(name)
            return None if found is None else (found.status, found.input)

        yield StateMachine(memory, execution, lambda: len(memory.executions))
        return
    with moto_stack(monkeypatch, state_machines=["hes_export"]) as aws:
        yield _moto_state_machine(aws)


def test_a_new_execution_runs_with_its_input(machine: StateMachine) -> None:
    assert machine.workflow.start("r-1", INPUT) is True
    assert machine.execution("r-1") == ("RUNNING", INPUT)


def test_starting_a_running_execution_again_with_its_input_succeeds_and_starts_nothing(
    machine: StateMachine,
) -> None:
    # GIVEN a running execution WHEN a redelivered message starts it again, with the same input
    machine.workflow.start("r-1", INPUT)
    again = machine.workflow.start("r-1", INPUT)
    # THEN Step Functions answers as for the first start (StartExecution is idempotent for standard
    # workflows), and there is still one execution
    assert again is True
    assert machine.count() == 1


def test_a_running_executions_name_with_another_input_is_refused(machine: StateMachine) -> None:
    machine.workflow.start("r-1", INPUT)
    assert machine.workflow.start("r-1", json.dumps({"request_id": "other"})) is False
    assert machine.execution("r-1") == ("RUNNING", INPUT)


def test_the_name_of_an_ended_execution_is_refused(machine: StateMachine) -> None:
    # GIVEN an execution that was stopped WHEN its name is started again, same input THEN it is refused
    machine.workflow.start("r-1", INPUT)
    machine.workflow.stop("r-1", "JobCancelled", "cancelled by request")
    assert machine.workflow.start("r-1", INPUT) is False
    assert machine.count() == 1


def test_stop_aborts_a_running_execution(machine: StateMachine) -> None:
    machine.workflow.start("r-1", INPUT)
    machine.workflow.stop("r-1", "JobCancelled", "x" * 40_000)
    assert machine.execution("r-1") == ("ABORTED", INPUT)


def test_stopping_an_unknown_or_ended_execution_is_harmless(machine: StateMachine) -> None:
    machine.workflow.stop("never-started", "JobCancelled", "cancelled by request")
    machine.workflow.start("r-1", INPUT)
    machine.workflow.stop("r-1", "JobCancelled", "cancelled by request")
    machine.workflow.stop("r-1", "JobCancelled", "cancelled again")
    assert machine.execution("never-started") is None
    assert machine.execution("r-1") == ("ABORTED", INPUT)


# ----------------------------------------------------------------------------------- task tokens
Outcome = tuple[str, Any]  # ("success", output) or ("failure", (error, cause))


class Tasks(Protocol):
    def waiting(self) -> str:
        """The token of a task that waits for its answer."""
        ...

    def stale(self) -> str:
        """A token no task waits for (a forged one, or one of a task long gone)."""
        ...

    def callbacks(self, task_token: str) -> TaskCallbacks: ...

    def outcome(self, task_token: str, wait_s: float = 10.0) -> Outcome | None:
        """What the task was answered, once it was; None while it still waits (after ``wait_s``)."""
        ...


class MemoryTasks:
    def __init__(self) -> None:
        self.record = RecordingCallbacks()

    def waiting(self) -> str:
        return f"token-{uuid.uuid4()}"

    def stale(self) -> str:
        token = f"token-{uuid.uuid4()}"
        self.record.stale.add(token)
        return token

    def callbacks(self, task_token: str) -> TaskCallbacks:
        return self.record(task_token)

    def outcome(self, task_token: str, wait_s: float = 10.0) -> Outcome | None:
        answers = [(kind, value) for kind, token, value in self.record.calls if token == task_token]
        return next(((kind, value) for kind, value in answers if kind != "heartbeat"), None)


# A Task that waits as the export and backfill workflows' Tasks do: its token goes out on a queue.
_WAITING_TASK = {
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "", "MessageBody": {"task_token.$": "$$.Task.Token"}},
            "HeartbeatSeconds": 60,  # as the workflows' long Tasks (moto refuses heartbeats without)
            "End": True,
        }
    },
}


class StepFunctionsTasks:
    """Executions moto runs: each waits in a Task whose token arrives on the export-jobs queue."""

    def __init__(self, aws: MotoStack) -> None:
        self._aws = aws
        self._client = aws.clients.stepfunctions
        definition = json.loads(json.dumps(_WAITING_TASK))
        definition["States"]["Wait"]["Parameters"]["QueueUrl"] = aws.queue_urls["export_jobs"]
        self._machine = self._client.create_state_machine(
            name="waits-for-its-token",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{aws.spec.account_id}:role/contract-tests",
        )["stateMachineArn"]
        self._executions: dict[str, str] = {}  # token -> execution ARN

    def waiting(self) -> str:
        execution = self._client.start_execution(stateMachineArn=self._machine, input="{}")["executionArn"]
        deadline = time.monotonic() + 10
        while not (bodies := self._aws.receive("export_jobs")):
            assert time.monotonic() < deadline, "the Task sent no token"
            time.sleep(0.01)
        [body] = bodies
        token = str(json.loads(body)["task_token"])
        self._executions[token] = execution
        return token

    def stale(self) -> str:
        return f"AAAA{uuid.uuid4().hex}"

    def callbacks(self, task_token: str) -> TaskCallbacks:
        return TaskTokenCallbacks(self._client, task_token)

    def outcome(self, task_token: str, wait_s: float = 10.0) -> Outcome | None:
        deadline = time.monotonic() + wait_s
        while True:
            found = self._client.describe_execution(executionArn=self._executions[task_token])
            if found["status"] == "SUCCEEDED":
                return "success", json.loads(found["output"])
            if found["status"] == "FAILED":
                return "failure", (found.get("error"), found.get("cause"))
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def release(self) -> None:
        """Answer every task still waiting, so no execution thread outlives the test."""
        for token in self._executions:
            with contextlib.suppress(ClientError):
                self._client.send_task_failure(taskToken=token, error="TestEnded", cause="")


def _send_task_failure_with_its_cause(self: Any) -> Any:
    """moto 5.2.5 drops SendTaskFailure's cause; AWS hands it to the waiting Task, and so does the
    local cloud's moto (``meterflow.localcloud.moto_fidelity``). The same one-line fix, for one test."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


@pytest.fixture(params=["memory", "stepfunctions"])
def tasks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tasks]:
    """GIVEN Tasks waiting for their tokens: the fake, or Step Functions (moto, executions run)."""
    if request.param == "memory":
        yield MemoryTasks()
        return
    monkeypatch.setattr(StepFunctionResponse, "send_task_failure", _send_task_failure_with_its_cause)
    with moto_stack(monkeypatch, queues=["export_jobs"], execute_state_machines=True) as aws:
        moto_tasks = StepFunctionsTasks(aws)
        try:
            yield moto_tasks
        finally:
            moto_tasks.release()


def test_success_hands_the_output_to_the_waiting_task(tasks: Tasks) -> None:
    token = tasks.waiting()
    tasks.callbacks(token).succeed({"sftp_location": "r-1/run-1-part-r-00000.gz", "record_count": 3})
    assert tasks.outcome(token) == (
        "success",
        {"sftp_location": "r-1/run-1-part-r-00000.gz", "record_count": 3},
    )


def test_failure_hands_the_error_and_cause_to_the_waiting_task(tasks: Tasks) -> None:
    token = tasks.waiting()
    tasks.callbacks(token).fail("ExportIntegrityError", "chunk 3 of 4 is missing")
    assert tasks.outcome(token) == ("failure", ("ExportIntegrityError", "chunk 3 of 4 is missing"))


def test_a_failure_is_cut_to_what_step_functions_accepts(tasks: Tasks) -> None:
    # WHEN a worker fails with an error and a cause longer than Step Functions takes
    token = tasks.waiting()
    tasks.callbacks(token).fail("E" * 300, "c" * 40_000)
    # THEN the task still gets the failure: its error to 256 characters, its cause to 32,000
    assert tasks.outcome(token) == ("failure", ("E" * 256, "c" * 32_000))


def test_a_heartbeat_keeps_the_task_waiting_for_its_answer(tasks: Tasks) -> None:
    token = tasks.waiting()
    tasks.callbacks(token).heartbeat()
    assert tasks.outcome(token, wait_s=0.0) is None
    tasks.callbacks(token).succeed({"rows": 1})
    assert tasks.outcome(token) == ("success", {"rows": 1})


ANSWERS: dict[str, Callable[[TaskCallbacks], None]] = {
    "succeed": lambda callbacks: callbacks.succeed({"rows": 1}),
    "fail": lambda callbacks: callbacks.fail("WorkerError", "boom"),
    "heartbeat": lambda callbacks: callbacks.heartbeat(),
}


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_answering_a_token_no_task_waits_for_is_stale(tasks: Tasks, answer: str) -> None:
    # GIVEN a token no task waits for (a forged one, or one from a task long gone), next to one that waits
    tasks.waiting()
    stale = tasks.callbacks(tasks.stale())
    # WHEN it is answered THEN the caller learns the answer is stale, not that the call failed
    with pytest.raises(StaleTaskToken):
        ANSWERS[answer](stale)


@pytest.mark.parametrize("answer", ["succeed", "heartbeat"])
def test_a_token_answered_once_is_stale(tasks: Tasks, answer: str) -> None:
    # GIVEN a task answered (QoS 1 delivers a result twice; a heartbeat races the result)
    token = tasks.waiting()
    tasks.callbacks(token).succeed({"rows": 1})
    assert tasks.outcome(token) == ("success", {"rows": 1})
    # WHEN its token is answered again THEN that answer is stale and the outcome stands
    with pytest.raises(StaleTaskToken):
        ANSWERS[answer](tasks.callbacks(token))
    assert tasks.outcome(token) == ("success", {"rows": 1})
