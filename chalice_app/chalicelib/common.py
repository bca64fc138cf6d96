"""What every feature's entry points share: the request's parameters, the mapping of domain errors,
and running a queue of task-token jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Blueprint, Request, Response, SQSEvent

from meterflow.aws.task_runner import JobHandler, run_job
from meterflow.core.errors import DomainError

logger = logging.getLogger("meterflow.api")


def respond(action: Callable[[], tuple[int, dict[str, Any]]]) -> Response:
    """Runs one use case: its (status, body), a domain error's 4xx, or a logged 500 without details."""
    try:
        status, body = action()
    except DomainError as error:
        return Response(body=error.to_dict(), status_code=error.status_code)
    except Exception:
        logger.exception("unhandled error")
        return Response(body={"error": "InternalError", "message": "internal error"}, status_code=500)
    return Response(body=body, status_code=status)


def current_request(blueprint: Blueprint) -> Request:
    request = blueprint.current_request
    assert request is not None, "Chalice sets current_request for every route call"
    return request


def query_params(blueprint: Blueprint) -> dict[str, str]:
    params = current_request(blueprint).query_params
    return {name: params[name] for name in params} if params else {}


def run_job_records(
    event: SQSEvent,
    handlers: Mapping[str, JobHandler],
    stepfunctions: Any,
    heartbeat_interval_seconds: float,
    log: logging.Logger,
) -> None:
    """Each record is one workflow job with its task token: run it, answer the workflow."""
    for record in event:
        outcome = run_job(record.body, handlers, stepfunctions, heartbeat_interval_seconds)
        log.info("job message %s: %s", record.to_dict().get("messageId"), outcome)
