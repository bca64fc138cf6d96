"""The on-premises bridge: backfill jobs for sites, their workflow's job queue, and what sites answer."""

from __future__ import annotations

import logging
import os
from typing import Any

from chalice.app import Blueprint, Response, SQSEvent

from chalice_app.chalicelib.common import current_request, respond, run_job_records
from meterflow.bridge.domain import jobs as bridge_jobs
from meterflow.bridge.wiring import bridge_services
from meterflow.core.contracts import parse_json_body
from workers.bridge import bridge_handlers

bridge = Blueprint(__name__)
logger = logging.getLogger("meterflow.api.bridge")

# Chalice needs queue names at import time; Terraform and the local runtime set them.
BRIDGE_JOBS_QUEUE = os.environ.get("MF_BRIDGE_JOBS_QUEUE_NAME", "meterflow-bridge-jobs")
SITE_DISPATCH_QUEUE = os.environ.get("MF_BRIDGE_SITE_DISPATCH_QUEUE_NAME", "meterflow-site-dispatch")
SITE_MESSAGES_QUEUE = os.environ.get("MF_BRIDGE_SITE_MESSAGES_QUEUE_NAME", "meterflow-site-messages")


@bridge.route("/backfills", methods=["POST"], content_types=["application/json"])
def post_backfill() -> Response:
    raw = current_request(bridge).raw_body

    def start() -> tuple[int, dict[str, Any]]:
        wired = bridge_services()
        job = bridge_jobs.start_backfill(parse_json_body(raw), wired.jobs, wired.workflow, wired.clock())
        return 202, job.status_body()

    return respond(start)


@bridge.route("/jobs/{job_id}", methods=["GET"])
def get_job(job_id: str) -> Response:
    return respond(lambda: (200, bridge_jobs.get_job(job_id, bridge_services().jobs).status_body()))


@bridge.route("/jobs/{job_id}/cancel", methods=["POST"])
def cancel_job(job_id: str) -> Response:
    def cancel() -> tuple[int, dict[str, Any]]:
        wired = bridge_services()
        return 200, bridge_jobs.cancel_job(
            job_id, wired.jobs, wired.workflow, wired.publisher, wired.clock()
        ).status_body()

    return respond(cancel)


@bridge.on_sqs_message(queue=BRIDGE_JOBS_QUEUE, batch_size=1)
def run_bridge_job(event: SQSEvent) -> None:
    wired = bridge_services()
    run_job_records(
        event,
        bridge_handlers(wired),
        wired.clients.stepfunctions,
        wired.settings.heartbeat_interval_seconds,
        logger,
    )


@bridge.on_sqs_message(queue=SITE_DISPATCH_QUEUE, batch_size=1)
def dispatch_site_jobs(event: SQSEvent) -> None:
    wired = bridge_services()
    for record in event:
        outcome = bridge_jobs.dispatch_site_job(
            record.body, wired.jobs, wired.publisher, wired.callbacks_for, wired.clock()
        )
        logger.info("site job message %s: %s", record.to_dict().get("messageId"), outcome)


@bridge.on_sqs_message(queue=SITE_MESSAGES_QUEUE, batch_size=1)
def handle_site_messages(event: SQSEvent) -> None:
    wired = bridge_services()
    for record in event:
        result = bridge_jobs.handle_rule_delivery(record.body, wired.jobs, wired.callbacks_for, wired.clock())
        log = logger.warning if result.outcome in ("rejected", "dropped") else logger.info
        log(
            "site message %s for job %s: %s %s",
            record.to_dict().get("messageId"),
            result.job_id,
            result.outcome,
            result.reason,
        )
