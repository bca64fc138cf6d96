"""The meter data lake: its query API, its workflows' job queue, ingestion triggers and schedule."""

from __future__ import annotations

import logging
import os

from chalice.app import Blueprint, CloudWatchEvent, Rate, Response, SQSEvent

from chalice_app.chalicelib.common import query_params, respond, run_job_records
from meterflow.lake.domain import ingest, integrations, queries
from meterflow.lake.wiring import lake_services
from workers.lake import lake_handlers

lake = Blueprint(__name__)
logger = logging.getLogger("meterflow.api.lake")

# Chalice needs queue names and the rate at import time; Terraform and the local runtime set them.
LAKE_JOBS_QUEUE = os.environ.get("MF_LAKE_JOBS_QUEUE_NAME", "meterflow-lake-jobs")
UNCOMPRESSED_OBJECTS_QUEUE = os.environ.get(
    "MF_LAKE_UNCOMPRESSED_OBJECTS_QUEUE_NAME", "meterflow-uncompressed-objects"
)
LATE_READS_QUEUE = os.environ.get("MF_LAKE_LATE_READS_QUEUE_NAME", "meterflow-late-reads")
SCHEDULER_RATE_MINUTES = int(os.environ.get("MF_LAKE_SCHEDULER_RATE_MINUTES", "5"))


@lake.route("/lake/queries/{name}", methods=["GET"])
def run_lake_query(name: str) -> Response:
    params = query_params(lake)
    return respond(lambda: (200, queries.run_named_query(name, params, lake_services().query_engine())))


@lake.on_sqs_message(queue=LAKE_JOBS_QUEUE, batch_size=1)
def run_lake_job(event: SQSEvent) -> None:
    wired = lake_services()
    run_job_records(
        event,
        lake_handlers(wired),
        wired.clients.stepfunctions,
        wired.settings.heartbeat_interval_seconds,
        logger,
    )


@lake.on_sqs_message(queue=UNCOMPRESSED_OBJECTS_QUEUE, batch_size=1)
def start_file_ingest(event: SQSEvent) -> None:
    wired = lake_services()
    for record in event:
        started = integrations.start_ingestions(record.body, wired.inbound, wired.ingest_workflow)
        logger.info("ingestions started: %s", started)


@lake.on_sqs_message(queue=LATE_READS_QUEUE, batch_size=1)
def merge_late_reads(event: SQSEvent) -> None:
    wired = lake_services()
    for record in event:
        result = ingest.merge_late_reads(ingest.late_reads_detail(record.body), wired.integrated)
        logger.info(
            "late reads of %s range %s merged: %s rows",
            result["file_id"],
            result["group_index"],
            result["rows_added"],
        )


@lake.schedule(Rate(SCHEDULER_RATE_MINUTES, unit=Rate.MINUTES))
def schedule_input_adapters(event: CloudWatchEvent) -> None:
    wired = lake_services()
    started = integrations.schedule_due(wired.integrations, wired.adapter_workflow, wired.clock())
    logger.info("input adapter executions started: %s", started)
