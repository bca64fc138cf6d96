"""Export workflow jobs: plan, chunk, finalize. Each parses its payload and calls one domain function."""

from __future__ import annotations

from typing import Any

from meterflow.aws.task_runner import JobHandler
from meterflow.hes.domain import services as hes
from meterflow.hes.wiring import HesServices


def hes_handlers(services: HesServices) -> dict[str, JobHandler]:
    settings = services.settings

    def plan_export(payload: dict[str, Any]) -> dict[str, Any]:
        return hes.plan(payload, services.fleet, settings.export_chunk_records, settings.export_max_chunks)

    def export_chunk(payload: dict[str, Any]) -> dict[str, Any]:
        return hes.export_chunk(payload, services.fleet, services.store)

    def finalize_export(payload: dict[str, Any]) -> dict[str, Any]:
        return hes.finalize_export(payload, services.store)

    return {"plan_export": plan_export, "export_chunk": export_chunk, "finalize_export": finalize_export}
