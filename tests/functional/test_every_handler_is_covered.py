"""Every route and every event handler the app registers has functional tests here.

``COVERED`` names, for each handler of ``app.handler_map`` (routes by their view function, event
sources by their function), the tests that call it. A handler registered without an entry (a new
route, queue or schedule) fails this test, and so does an entry naming a handler or a test that no
longer exists: the tier cannot silently fall behind the app.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from chalice.app import Chalice

FUNCTIONS_MODULE = Path(__file__).resolve().parents[2] / "terraform" / "modules" / "functions" / "main.tf"

COVERED: dict[str, tuple[str, ...]] = {
    # ------------------------------------------------------------------------------------ routes
    "get_readings": (
        "test_hes_api::test_get_readings_returns_a_page_of_the_fleet",
        "test_hes_api::test_get_readings_without_a_start_date_is_a_bad_request",
        "test_hes_api::test_get_readings_with_a_bad_or_unknown_parameter_names_it",
    ),
    "post_readings_file": (
        "test_hes_api::test_post_readings_file_records_the_request_and_queues_it",
        "test_hes_api::test_post_readings_file_with_a_body_that_is_not_json_is_a_bad_request",
        "test_hes_api::test_post_readings_file_with_an_invalid_window_names_the_field",
        "test_hes_api::test_post_readings_file_as_anything_but_json_is_unsupported",
    ),
    "get_readings_file": (
        "test_hes_api::test_get_readings_file_returns_the_requests_status",
        "test_hes_api::test_get_readings_file_needs_a_uuid",
        "test_hes_api::test_get_readings_file_of_an_unknown_request_is_not_found",
    ),
    "run_lake_query": (
        "test_lake_api::test_run_lake_query_renders_the_named_query_runs_it_and_types_the_rows",
        "test_lake_api::test_run_lake_query_of_an_unknown_name_is_not_found_and_lists_the_known_ones",
        "test_lake_api::test_run_lake_query_with_missing_unknown_or_invalid_parameters_names_them",
    ),
    "post_backfill": (
        "test_bridge_api::test_post_backfill_records_the_job_and_starts_its_workflow",
        "test_bridge_api::test_post_backfill_with_an_invalid_request_names_the_field",
        "test_bridge_api::test_post_backfill_that_is_not_an_object_is_a_bad_request",
        "test_bridge_api::test_post_backfill_as_anything_but_json_is_unsupported",
        "test_bridge_api::test_post_backfill_compares_naive_and_offset_timestamps_in_utc",
        "test_bridge_api::test_post_backfill_of_a_window_at_the_end_of_time_is_a_bad_request",
        "test_bridge_api::test_post_backfill_whose_offset_leaves_the_calendar_is_a_bad_request",
        "test_bridge_api::test_post_backfill_with_a_deeply_nested_body_is_a_bad_request",
    ),
    "get_job": (
        "test_bridge_api::test_get_job_returns_the_jobs_status_without_its_token",
        "test_bridge_api::test_get_job_of_an_unknown_id_is_not_found",
    ),
    "cancel_job": (
        "test_bridge_api::test_cancel_job_stops_its_workflow_and_tells_the_site",
        "test_bridge_api::test_cancel_job_of_an_unknown_id_is_not_found",
        "test_bridge_api::test_cancel_job_that_already_ended_is_a_conflict",
    ),
    # ---------------------------------------------------------------------------- event handlers
    "start_file_export": (
        "test_hes_handlers::test_start_file_export_starts_the_export_workflow_once",
        "test_hes_handlers::test_start_file_export_fails_a_malformed_message_so_it_goes_to_the_dlq",
    ),
    "run_export_job": (
        "test_hes_handlers::test_run_export_job_runs_plan_chunks_and_finalize_to_a_completed_file",
        "test_hes_handlers::test_run_export_job_fails_the_task_of_an_unknown_job_type",
        "test_hes_handlers::test_run_export_job_fails_the_task_of_a_malformed_payload",
        "test_hes_handlers::test_run_export_job_raises_on_a_message_without_a_task_token",
        "test_hes_handlers::test_run_export_job_drops_a_job_no_workflow_waits_for",
    ),
    "run_lake_job": (
        "test_lake_handlers::test_run_lake_job_ingests_a_file_through_every_job_of_the_workflow",
        "test_lake_handlers::test_run_lake_job_fails_the_task_of_an_unknown_job_type",
        "test_lake_handlers::test_run_lake_job_raises_on_a_message_without_a_task_token",
    ),
    "start_file_ingest": (
        "test_lake_handlers::test_start_file_ingest_starts_one_ingestion_per_announced_file",
        "test_lake_handlers::test_start_file_ingest_ignores_the_test_event_and_files_deleted_since",
        "test_lake_handlers::test_start_file_ingest_fails_a_notification_that_is_not_one_so_it_goes_to_the_dlq",
    ),
    "merge_late_reads": (
        "test_lake_handlers::test_merge_late_reads_merges_the_announced_rows_into_their_partitions_once",
        "test_lake_handlers::test_merge_late_reads_fails_a_malformed_or_inconsistent_event_so_it_goes_to_the_dlq",
    ),
    "schedule_input_adapters": (
        "test_lake_handlers::test_schedule_input_adapters_starts_each_due_integration_once",
        "test_lake_handlers::test_schedule_input_adapters_leaves_disabled_and_unsettled_integrations_alone",
        "test_lake_handlers::test_schedule_input_adapters_fails_the_whole_tick_on_one_malformed_integration",
    ),
    "run_bridge_job": (
        "test_bridge_handlers::test_run_bridge_job_prepares_the_upload_and_the_workflow_sends_the_site_job",
        "test_bridge_handlers::test_run_bridge_job_verifies_the_upload_and_completes_the_backfill",
        "test_bridge_handlers::test_run_bridge_job_fails_the_backfill_whose_upload_is_not_what_the_site_reported",
        "test_bridge_handlers::test_run_bridge_job_raises_on_a_message_without_a_task_token",
    ),
    "dispatch_site_jobs": (
        "test_bridge_handlers::test_dispatch_site_jobs_publishes_the_job_on_its_workers_topic_with_its_token",
        "test_bridge_handlers::test_dispatch_site_jobs_fails_the_task_of_a_site_job_it_cannot_address",
        "test_bridge_handlers::test_dispatch_site_jobs_raises_on_a_message_without_a_task_token",
    ),
    "handle_site_messages": (
        "test_bridge_handlers::test_handle_site_messages_answers_the_task_with_the_sites_result",
        "test_bridge_handlers::test_handle_site_messages_records_progress_and_forwards_heartbeats",
        "test_bridge_handlers::test_handle_site_messages_fails_the_task_of_a_failed_site_job",
        "test_bridge_handlers::test_handle_site_messages_drops_or_rejects_what_is_not_the_jobs_sites_answer",
    ),
}


def registered(app: Chalice) -> dict[str, str]:
    """Every handler of the app -> what it serves: ``GET /path`` for a route, its event source's kind."""
    handlers: dict[str, str] = {}
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            handlers[entry.view_name] = f"{method} {path}"
    for source in app.event_sources:
        handlers[source.name] = type(source).__name__
    return handlers


def test_every_route_and_event_handler_has_functional_tests(app: Chalice) -> None:
    handlers = registered(app)
    # the registry agrees with itself: every route and event source is a handler the app can invoke
    assert set(handlers) == set(app.handler_map), set(handlers) ^ set(app.handler_map)
    missing = {name: serves for name, serves in handlers.items() if name not in COVERED}
    assert not missing, f"handlers without a functional test (add tests and a COVERED entry): {missing}"
    stale = sorted(set(COVERED) - set(handlers))
    assert not stale, f"COVERED names handlers the app no longer registers: {stale}"


def test_every_test_named_as_coverage_exists() -> None:
    absent = []
    for tests in COVERED.values():
        for test in tests:
            module, function = test.split("::")
            if not callable(getattr(importlib.import_module(f"tests.functional.{module}"), function, None)):
                absent.append(test)
    assert not absent, f"COVERED names tests that do not exist: {absent}"


def test_every_handler_terraform_runs_is_what_app_py_exports(app: Chalice) -> None:
    # GIVEN the handlers Terraform's functions run ("app.<name>": Lambda imports app.py, so that its
    # setup always runs first) and the app module as Lambda imports it
    declared = set(re.findall(r'handler\s*=\s*"app\.(\w+)"', FUNCTIONS_MODULE.read_text()))
    module = importlib.import_module("chalice_app.app")
    # WHEN resolving each name on the module
    resolved = {name: getattr(module, name, None) for name in declared}
    # THEN the API is the app, every other is a registered event handler, and every registered event
    # handler has a function
    assert resolved.pop("app") is app
    assert {name: app.handler_map.get(name) for name in resolved} == resolved
    assert set(resolved) == {source.name for source in app.event_sources}
