"""SQS queues and Step Functions: starting executions and answering task tokens."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from meterflow.core.errors import StaleTaskToken

__all__ = [
    "STALE_TOKEN_ERRORS",
    "SqsMessageQueue",
    "StaleTaskToken",
    "StepFunctionsWorkflow",
    "TaskTokenCallbacks",
]

# Errors that mean "this token is no longer waiting": the task timed out (heartbeat) and was retried
# with a new token, or the execution ended. The work is simply dropped; the retry owns it.
STALE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class SqsMessageQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, body: str) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)


class StepFunctionsWorkflow:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def execution_arn(self, execution_name: str) -> str:
        return f"{self._arn.replace(':stateMachine:', ':execution:', 1)}:{execution_name}"

    def stop(self, execution_name: str, error: str, cause: str) -> None:
        """Stop a running execution; one that already ended is left as it is."""
        try:
            self._client.stop_execution(
                executionArn=self.execution_arn(execution_name), error=error[:256], cause=cause[:32_000]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"ExecutionDoesNotExist", "ExecutionNotRunning"}:
                raise

    def start(self, execution_name: str, workflow_input: str) -> bool:
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=execution_name, input=workflow_input)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise
        return True


class TaskTokenCallbacks:
    """SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat for one task token."""

    def __init__(self, client: Any, task_token: str) -> None:
        self._client = client
        self._token = task_token

    def _call(self, operation: str, **kwargs: Any) -> None:
        try:
            getattr(self._client, operation)(taskToken=self._token, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in STALE_TOKEN_ERRORS:
                raise StaleTaskToken(exc.response["Error"]["Code"]) from exc
            raise

    def succeed(self, output: dict[str, Any]) -> None:
        self._call("send_task_success", output=json.dumps(output))

    def fail(self, error: str, cause: str) -> None:
        # Step Functions limits error to 256 and cause to 32,768 characters.
        self._call("send_task_failure", error=error[:256], cause=cause[:32_000])

    def heartbeat(self) -> None:
        self._call("send_task_heartbeat")
