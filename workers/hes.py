"""Export workflow jobs: plan, chunk, finalize. Each parses its payload and calls one domain function."""

from __future__ import annotations

from typing import Any

from meterflow.aws.task_runner import JobHandler
from meterflow.hes.domain import services
from meterflow.hes.wiring import HesServices


def export_handlers(hes: HesServices) -> dict[str, JobHandler]:
    settings = hes.settings

    def plan_export(payload: dict[str, Any]) -> dict[str, Any]:
        return services.plan(payload, hes.fleet, settings.export_chunk_records, settings.export_max_chunks)

    def export_chunk(payload: dict[str, Any]) -> dict[str, Any]:
        return services.export_chunk(payload, hes.fleet, hes.store)

    def finalize_export(payload: dict[str, Any]) -> dict[str, Any]:
        return services.finalize_export(payload, hes.store)

    return {"plan_export": plan_export, "export_chunk": export_chunk, "finalize_export": finalize_export}
