"""On-premises bridge routes: POST /backfills, GET /jobs/{job_id}, POST /jobs/{job_id}/cancel."""

from __future__ import annotations

import json
import uuid

from chalice.test import Client

from onprem_worker.contracts import Channel, topic
from tests.support.backfills import JSON, TENANT, WORKER, Backfill, backfill_request
from tests.support.inprocess_stack import InProcessStack, Invoke


def post_backfill(client: Client, body: bytes) -> tuple[int, dict[str, object]]:
    response = client.http.post("/backfills", headers=JSON, body=body)
    return response.status_code, dict(response.json_body or {})


# -- POST /backfills -------------------------------------------------------------------------------------


def test_post_backfill_records_the_job_and_starts_its_workflow(client: Client, stack: InProcessStack) -> None:
    # WHEN asking for an hour of a site's historian
    status, job = post_backfill(client, backfill_request())
    # THEN the job is accepted as queued, for that site and window
    assert status == 202
    assert (job["status"], job["tenant"], job["worker"]) == ("queued", TENANT, WORKER)
    assert (job["window_start"], job["window_end"]) == ("2023-01-02T00:00:00", "2023-01-02T01:00:00")
    job_id = str(job["job_id"])
    row = stack.item("bridge_jobs", job_id=job_id)
    assert row is not None and row["status"] == "queued"
    # AND its backfill workflow runs, named after the job, and asks for the upload to be prepared
    assert stack.execution_status(stack.execution_arn("historian_backfill", job_id)) == "RUNNING"
    prepare = stack.next_message("bridge_jobs", lambda body: body["payload"].get("job_id") == job_id)
    assert json.loads(prepare)["job_type"] == "prepare_backfill"


def test_post_backfill_with_an_invalid_request_names_the_field(client: Client) -> None:
    cases = {
        "tenant": backfill_request(tenant="ACME"),
        "end": backfill_request(start="2023-01-02T00:00:00Z", end="2023-03-02T00:00:00Z"),
        "meter_ids": backfill_request(meter_ids=[]),
        "colour": backfill_request(colour="red"),
        "body": b"{not json",
    }
    for field, body in cases.items():
        status, error = post_backfill(client, body)
        assert (status, error.get("field")) == (400, field), error


def test_post_backfill_that_is_not_an_object_is_a_bad_request(client: Client) -> None:
    for body in (b"[]", b"null", b'"acme"'):
        status, error = post_backfill(client, body)
        assert (status, error["error"]) == (400, "InvalidInput")


def test_post_backfill_as_anything_but_json_is_unsupported(client: Client) -> None:
    response = client.http.post("/backfills", headers={"Content-Type": "text/csv"}, body=backfill_request())
    assert response.status_code == 415


def test_post_backfill_compares_naive_and_offset_timestamps_in_utc(client: Client) -> None:
    # GIVEN a naive start (UTC) and an end at 01:00+05:00, which is 20:00 UTC the day before
    body = backfill_request(start="2023-01-02T00:00:00", end="2023-01-02T01:00:00+05:00")
    # WHEN posting it
    status, error = post_backfill(client, body)
    # THEN the window is inverted once both are in UTC: a 400 on end, never a 500
    assert (status, error["field"]) == (400, "end")


def test_post_backfill_of_a_window_at_the_end_of_time_is_a_bad_request(client: Client) -> None:
    # GIVEN a window in the last hours of year 9999 (start + 31 days is past the calendar)
    body = backfill_request(start="9999-12-31T00:00:00", end="9999-12-31T01:00:00")
    # WHEN posting it
    status, error = post_backfill(client, body)
    # THEN a 400 says a historian holds no readings of the future, never a 500
    assert (status, error["field"]) == (400, "start")


def test_post_backfill_with_a_deeply_nested_body_is_a_bad_request(client: Client) -> None:
    status, _ = post_backfill(client, b"[" * 100_000)
    assert status == 400


# -- GET /jobs/{job_id} ----------------------------------------------------------------------------------


def test_get_job_returns_the_jobs_status_without_its_token(client: Client, backfill: Backfill) -> None:
    response = client.http.get(f"/jobs/{backfill.job_id}")
    assert response.status_code == 200
    body = response.json_body
    assert (body["job_id"], body["status"], body["tenant"]) == (backfill.job_id, "queued", TENANT)
    assert "token_sha256" not in body


def test_get_job_of_an_unknown_id_is_not_found(client: Client) -> None:
    response = client.http.get(f"/jobs/{uuid.uuid4()}")
    assert (response.status_code, response.json_body["field"]) == (404, "job_id")


# -- POST /jobs/{job_id}/cancel --------------------------------------------------------------------------


def test_cancel_job_stops_its_workflow_and_tells_the_site(
    client: Client, backfill: Backfill, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN cancelling a job whose workflow runs
    response = client.http.post(f"/jobs/{backfill.job_id}/cancel")
    # THEN the job is cancelled, and stays so
    assert response.status_code == 200
    assert response.json_body["status"] == "cancelled"
    assert client.http.get(f"/jobs/{backfill.job_id}").json_body["status"] == "cancelled"
    # AND its execution is stopped: a late answer to the task it waited for does not move it on
    # (moto ends a stopped execution only once its waiting task returns; AWS ends it at once)
    invoke.sqs("run_bridge_job", backfill.prepare_job)
    assert stack.wait_until_ended(backfill.execution_arn) == "ABORTED"
    assert "RunOnSite" not in stack.entered_states(backfill.execution_arn)
    # AND the site is told on its cancel topic
    cancels = [
        json.loads(payload)
        for name, payload in stack.published_to_sites()
        if name == topic(TENANT, WORKER, Channel.CANCEL)
    ]
    assert backfill.job_id in [cancel["job_id"] for cancel in cancels]


def test_cancel_job_of_an_unknown_id_is_not_found(client: Client) -> None:
    response = client.http.post(f"/jobs/{uuid.uuid4()}/cancel")
    assert (response.status_code, response.json_body["field"]) == (404, "job_id")


def test_cancel_job_that_already_ended_is_a_conflict(client: Client, backfill: Backfill) -> None:
    assert client.http.post(f"/jobs/{backfill.job_id}/cancel").status_code == 200
    again = client.http.post(f"/jobs/{backfill.job_id}/cancel")
    assert (again.status_code, again.json_body["error"]) == (409, "Conflict")


def test_post_backfill_whose_offset_leaves_the_calendar_is_a_bad_request(client: Client) -> None:
    # GIVEN an end at the last hour of year 9999, five hours behind UTC (past 9999 in UTC)
    body = backfill_request(start="9999-12-31T20:00:00-05:00", end="9999-12-31T23:00:00-05:00")
    # WHEN posting it
    status, error = post_backfill(client, body)
    # THEN a 400 names the field, never a 500
    assert (status, error["field"]) == (400, "start")
