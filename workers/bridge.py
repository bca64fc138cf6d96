"""Backfill workflow jobs run in the cloud (on the bridge-jobs queue): prepare the upload, verify it."""

from __future__ import annotations

from typing import Any

from meterflow.aws.task_runner import JobHandler
from meterflow.bridge.domain import jobs as bridge
from meterflow.bridge.wiring import BridgeServices


def bridge_handlers(services: BridgeServices) -> dict[str, JobHandler]:
    def prepare_backfill(payload: dict[str, Any]) -> dict[str, Any]:
        return bridge.prepare_backfill(payload, services.presigner)

    def verify_backfill(payload: dict[str, Any]) -> dict[str, Any]:
        return bridge.verify_backfill(payload, services.inbound, services.jobs, services.clock())

    return {"prepare_backfill": prepare_backfill, "verify_backfill": verify_backfill}
