"""The Meterflow API and queue handlers (AWS Lambda via Chalice; locally, the same functions).

Each entry point parses its input, calls one domain function and maps the result or the error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from aws_xray_sdk.core import patch
from chalice.app import Chalice, CloudWatchEvent, Rate, Request, Response, SQSEvent

from meterflow.aws.task_runner import run_job
from meterflow.bridge.domain import jobs as bridge
from meterflow.bridge.wiring import BridgeSettings, bridge_services
from meterflow.core.errors import DomainError, InvalidInput
from meterflow.hes.domain import services
from meterflow.hes.settings import Settings, check_settings
from meterflow.hes.wiring import hes_services
from meterflow.lake.domain import ingest, integrations, queries
from meterflow.lake.settings import LakeSettings
from meterflow.lake.wiring import lake_services
from workers.bridge import bridge_handlers
from workers.hes import export_handlers
from workers.lake import lake_handlers

# Traces every AWS call; AWS_XRAY_SDK_ENABLED=false (the local runtime) turns the recorder off.
patch(["boto3", "botocore"])

# Chalice's own log handler would duplicate every "meterflow.*" record; Lambda's root handler suffices.
app = Chalice(app_name="meterflow", configure_logs=False)
logging.getLogger("meterflow").setLevel(os.environ.get("MF_LOG_LEVEL", "INFO"))
logger = logging.getLogger("meterflow.api")

# Chalice needs queue names at import time; Terraform and the local runtime set them.
FILE_REQUESTS_QUEUE = os.environ.get("MF_FILE_REQUESTS_QUEUE_NAME", "meterflow-file-requests")
EXPORT_JOBS_QUEUE = os.environ.get("MF_EXPORT_JOBS_QUEUE_NAME", "meterflow-export-jobs")
LAKE_JOBS_QUEUE = os.environ.get("MF_LAKE_JOBS_QUEUE_NAME", "meterflow-lake-jobs")
UNCOMPRESSED_OBJECTS_QUEUE = os.environ.get(
    "MF_UNCOMPRESSED_OBJECTS_QUEUE_NAME", "meterflow-uncompressed-objects"
)
LATE_READS_QUEUE = os.environ.get("MF_LATE_READS_QUEUE_NAME", "meterflow-late-reads")
SITE_DISPATCH_QUEUE = os.environ.get("MF_SITE_DISPATCH_QUEUE_NAME", "meterflow-site-dispatch")
SITE_MESSAGES_QUEUE = os.environ.get("MF_SITE_MESSAGES_QUEUE_NAME", "meterflow-site-messages")
SCHEDULER_RATE_MINUTES = int(os.environ.get("MF_SCHEDULER_RATE_MINUTES", "5"))


def _only_inspected() -> bool:
    """True when the Chalice CLI imports the app only to read its routes (``chalice package``)."""
    if "chalice.cli" not in sys.modules:
        return False  # Lambda, the local cloud's API and workers: serving
    import click

    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "local"


# Serving without its settings, the app would answer 500 on every request: refuse to start instead,
# naming every missing variable.
if not _only_inspected():
    check_settings(Settings.from_env, LakeSettings.from_env, BridgeSettings.from_env)


def _respond(action: Callable[[], tuple[int, dict[str, Any]]]) -> Response:
    try:
        status, body = action()
    except DomainError as error:
        return Response(body=error.to_dict(), status_code=error.status_code)
    except Exception:
        logger.exception("unhandled error")
        return Response(body={"error": "InternalError", "message": "internal error"}, status_code=500)
    return Response(body=body, status_code=status)


def _current_request() -> Request:
    request = app.current_request
    assert request is not None, "Chalice sets current_request for every route call"
    return request


def _query_params() -> dict[str, str]:
    params = _current_request().query_params
    return {name: params[name] for name in params} if params else {}


@app.route("/readings", methods=["GET"])
def get_readings() -> Response:
    params = _query_params()
    return _respond(lambda: (200, services.get_readings(hes_services().fleet, params, hes_services().clock)))


@app.route("/readings/file", methods=["POST"], content_types=["application/json"])
def post_readings_file() -> Response:
    raw = _current_request().raw_body

    def accept() -> tuple[int, dict[str, Any]]:
        hes = hes_services()
        request = services.request_export(
            services.parse_json_body(raw), hes.requests, hes.file_requests_queue, hes.clock
        )
        return 202, {"request_id": request.request_id, "status": request.status.value}

    return _respond(accept)


@app.route("/readings/file", methods=["GET"])
def get_readings_file() -> Response:
    params = _query_params()
    return _respond(
        lambda: (200, services.get_export(params.get("request_id"), hes_services().requests).status_body())
    )


@app.on_sqs_message(queue=FILE_REQUESTS_QUEUE, batch_size=1)
def start_file_export(event: SQSEvent) -> None:
    hes = hes_services()
    for record in event:
        services.submit_export(record.body, hes.requests, hes.workflow)


@app.on_sqs_message(queue=EXPORT_JOBS_QUEUE, batch_size=1)
def run_export_job(event: SQSEvent) -> None:
    hes = hes_services()
    handlers = export_handlers(hes)
    for record in event:
        outcome = run_job(
            record.body, handlers, hes.clients.stepfunctions, hes.settings.heartbeat_interval_seconds
        )
        logger.info("export job message %s: %s", record.to_dict().get("messageId"), outcome)


@app.route("/lake/queries/{name}", methods=["GET"])
def run_lake_query(name: str) -> Response:
    params = _query_params()
    return _respond(lambda: (200, queries.run_named_query(name, params, lake_services().query_engine())))


@app.on_sqs_message(queue=LAKE_JOBS_QUEUE, batch_size=1)
def run_lake_job(event: SQSEvent) -> None:
    lake = lake_services()
    handlers = {**lake_handlers(lake), **bridge_handlers(bridge_services())}
    for record in event:
        outcome = run_job(
            record.body, handlers, lake.clients.stepfunctions, lake.settings.heartbeat_interval_seconds
        )
        logger.info("lake job message %s: %s", record.to_dict().get("messageId"), outcome)


@app.on_sqs_message(queue=UNCOMPRESSED_OBJECTS_QUEUE, batch_size=1)
def start_file_ingest(event: SQSEvent) -> None:
    lake = lake_services()
    for record in event:
        started = integrations.start_ingestions(record.body, lake.inbound, lake.ingest_workflow)
        logger.info("ingestions started: %s", started)


@app.on_sqs_message(queue=LATE_READS_QUEUE, batch_size=1)
def merge_late_reads(event: SQSEvent) -> None:
    lake = lake_services()
    for record in event:
        result = ingest.merge_late_reads(ingest.late_reads_detail(record.body), lake.integrated)
        logger.info(
            "late reads of %s range %s merged: %s rows",
            result["file_id"],
            result["group_index"],
            result["rows_added"],
        )


@app.schedule(Rate(SCHEDULER_RATE_MINUTES, unit=Rate.MINUTES))
def schedule_input_adapters(event: CloudWatchEvent) -> None:
    lake = lake_services()
    started = integrations.schedule_due(lake.integrations, lake.adapter_workflow, lake.clock())
    logger.info("input adapter executions started: %s", started)


# ------------------------------------------------------------------------------ on-premises bridge
@app.route("/backfills", methods=["POST"], content_types=["application/json"])
def post_backfill() -> Response:
    raw = _current_request().raw_body

    def start() -> tuple[int, dict[str, Any]]:
        hub = bridge_services()
        job = bridge.start_backfill(services.parse_json_body(raw), hub.jobs, hub.workflow, hub.clock())
        return 202, job.status_body()

    return _respond(start)


@app.route("/jobs/{job_id}", methods=["GET"])
def get_job(job_id: str) -> Response:
    return _respond(lambda: (200, bridge.get_job(job_id, bridge_services().jobs).status_body()))


@app.route("/jobs/{job_id}/cancel", methods=["POST"])
def cancel_job(job_id: str) -> Response:
    def cancel() -> tuple[int, dict[str, Any]]:
        hub = bridge_services()
        return 200, bridge.cancel_job(
            job_id, hub.jobs, hub.workflow, hub.publisher, hub.clock()
        ).status_body()

    return _respond(cancel)


@app.on_sqs_message(queue=SITE_DISPATCH_QUEUE, batch_size=1)
def dispatch_site_jobs(event: SQSEvent) -> None:
    hub = bridge_services()
    for record in event:
        outcome = bridge.dispatch_site_job(
            record.body, hub.jobs, hub.publisher, hub.callbacks_for, hub.clock()
        )
        logger.info("site job message %s: %s", record.to_dict().get("messageId"), outcome)


@app.on_sqs_message(queue=SITE_MESSAGES_QUEUE, batch_size=1)
def handle_site_messages(event: SQSEvent) -> None:
    hub = bridge_services()
    for record in event:
        try:
            topic_name, payload = bridge.site_message_from_rule(record.body)
        except InvalidInput as exc:
            logger.warning("site message %s dropped: %s", record.to_dict().get("messageId"), exc.message)
            continue
        result = bridge.handle_site_message(topic_name, payload, hub.jobs, hub.callbacks_for, hub.clock())
        log = logger.warning if result.outcome == "rejected" else logger.info
        log("site message on %s for job %s: %s %s", topic_name, result.job_id, result.outcome, result.reason)
