"""The worker side of the task-token protocol.

A state machine Task sends ``{"version": 1, "job_type", "task_token", "payload"}`` to a worker
queue and waits. The worker runs the job while sending heartbeats, then answers with
SendTaskSuccess, or SendTaskFailure carrying the error class and message: a job that raised is
never reported as a success. A token the workflow gave up on (heartbeat timeout, then a retry with
a new token) is dropped quietly: the retry owns the work.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from meterflow.aws.messaging import StaleTaskToken, TaskTokenCallbacks
from meterflow.core.errors import DomainError

logger = logging.getLogger("meterflow.worker")

JobHandler = Callable[[dict[str, Any]], dict[str, Any]]


class JobEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    job_type: str
    task_token: str
    payload: dict[str, Any]


class MalformedJob(Exception):
    """A message that carries no usable task token: nobody can be told, so it must go to the DLQ."""


class Heartbeat:
    """Sends SendTaskHeartbeat every ``interval`` seconds while a job runs."""

    def __init__(self, callbacks: TaskTokenCallbacks, interval: float) -> None:
        self._callbacks = callbacks
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="task-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._callbacks.heartbeat()
            except StaleTaskToken:
                return
            except (BotoCoreError, ClientError):
                logger.warning("heartbeat failed; will try again", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def parse_envelope(body: str) -> JobEnvelope:
    try:
        return JobEnvelope.model_validate_json(body)
    except ValidationError as exc:
        try:
            token = json.loads(body).get("task_token")
        except (ValueError, AttributeError):
            token = None
        if isinstance(token, str) and token:
            # The token is usable: report the malformed job as a task failure, not a silent drop.
            return JobEnvelope(
                version=1, job_type="__malformed__", task_token=token, payload={"error": str(exc)}
            )
        raise MalformedJob(f"job message without a valid envelope: {exc}") from exc


def run_job(
    body: str,
    handlers: Mapping[str, JobHandler],
    stepfunctions_client: Any,
    heartbeat_interval: float,
) -> str:
    """Run one job message to completion and report it; returns the outcome for logging."""
    envelope = parse_envelope(body)
    callbacks = TaskTokenCallbacks(stepfunctions_client, envelope.task_token)
    try:
        if envelope.job_type == "__malformed__":
            callbacks.fail("MalformedJob", envelope.payload["error"])
            return "failed"
        handler = handlers.get(envelope.job_type)
        if handler is None:
            callbacks.fail("UnknownJobType", f"no handler for job_type {envelope.job_type!r}")
            return "failed"
        try:
            with Heartbeat(callbacks, heartbeat_interval):
                output = handler(envelope.payload)
        except DomainError as exc:
            logger.warning("job %s failed: %s", envelope.job_type, exc.message)
            callbacks.fail(exc.code, exc.message)
            return "failed"
        except (BotoCoreError, ClientError) as exc:
            logger.warning("job %s hit a transient AWS error", envelope.job_type, exc_info=True)
            callbacks.fail("TransientError", f"{type(exc).__name__}: {exc}")
            return "failed"
        except Exception as exc:
            logger.exception("job %s raised", envelope.job_type)
            callbacks.fail("WorkerError", f"{type(exc).__name__}: {exc}")
            return "failed"
        callbacks.succeed(output)
        return "succeeded"
    except StaleTaskToken as stale:
        logger.info(
            "job %s: the workflow no longer waits for this token (%s); dropped", envelope.job_type, stale
        )
        return "stale"
