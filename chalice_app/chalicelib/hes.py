"""The HES simulator's API (seed 000) and its export workflow's queue handlers."""

from __future__ import annotations

import logging
import os
from typing import Any

from chalice.app import Blueprint, Response, SQSEvent

from chalice_app.chalicelib.common import current_request, query_params, respond, run_job_records
from meterflow.core.contracts import parse_json_body
from meterflow.hes.domain import services
from meterflow.hes.wiring import hes_services
from workers.hes import hes_handlers

hes = Blueprint(__name__)
logger = logging.getLogger("meterflow.api.hes")

# Chalice needs queue names at import time; Terraform and the local runtime set them.
FILE_REQUESTS_QUEUE = os.environ.get("MF_HES_FILE_REQUESTS_QUEUE_NAME", "meterflow-file-requests")
EXPORT_JOBS_QUEUE = os.environ.get("MF_HES_EXPORT_JOBS_QUEUE_NAME", "meterflow-export-jobs")


@hes.route("/readings", methods=["GET"])
def get_readings() -> Response:
    params = query_params(hes)
    return respond(lambda: (200, services.get_readings(hes_services().fleet, params, hes_services().clock)))


@hes.route("/readings/file", methods=["POST"], content_types=["application/json"])
def post_readings_file() -> Response:
    raw = current_request(hes).raw_body

    def accept() -> tuple[int, dict[str, Any]]:
        wired = hes_services()
        request = services.request_export(
            parse_json_body(raw), wired.requests, wired.file_requests_queue, wired.clock
        )
        return 202, {"request_id": request.request_id, "status": request.status.value}

    return respond(accept)


@hes.route("/readings/file", methods=["GET"])
def get_readings_file() -> Response:
    params = query_params(hes)
    return respond(
        lambda: (200, services.get_export(params.get("request_id"), hes_services().requests).status_body())
    )


@hes.on_sqs_message(queue=FILE_REQUESTS_QUEUE, batch_size=1)
def start_file_export(event: SQSEvent) -> None:
    wired = hes_services()
    for record in event:
        services.submit_export(record.body, wired.requests, wired.workflow)


@hes.on_sqs_message(queue=EXPORT_JOBS_QUEUE, batch_size=1)
def run_export_job(event: SQSEvent) -> None:
    wired = hes_services()
    run_job_records(
        event,
        hes_handlers(wired),
        wired.clients.stepfunctions,
        wired.settings.heartbeat_interval_seconds,
        logger,
    )
