"""HES routes: GET /readings, POST /readings/file, GET /readings/file."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from chalice.test import Client

from tests.support.inprocess_stack import InProcessStack

JSON = {"Content-Type": "application/json"}
WINDOW = {"start_date": "2023-01-02 00:00:00", "end_date": "2023-01-02 01:00:00"}


def post_file_request(client: Client, body: object) -> dict[str, object]:
    response = client.http.post("/readings/file", headers=JSON, body=json.dumps(body).encode())
    assert response.status_code == 202, response.body
    return dict(response.json_body)


# -- GET /readings ---------------------------------------------------------------------------------------


def test_get_readings_returns_a_page_of_the_fleet(client: Client) -> None:
    # WHEN asking for three readings from the fleet's first day
    response = client.http.get("/readings?start_date=2023-01-01%2000:00:00&page_size=3")
    # THEN three records of the first slot come back, numbered from 1
    assert response.status_code == 200
    body = response.json_body
    assert [record["offset"] for record in body["records"]] == [1, 2, 3]
    assert {record["time"] for record in body["records"]} == {"2023-01-01 00:00:00.000000"}
    assert body["filter_params"]["page_size"] == 3
    assert body["results"]["records_total"] > 3


def test_get_readings_without_a_start_date_is_a_bad_request(client: Client) -> None:
    response = client.http.get("/readings?page_size=3")
    assert response.status_code == 400
    assert response.json_body["error"] == "InvalidInput"
    assert response.json_body["field"] == "start_date"


def test_get_readings_with_a_bad_or_unknown_parameter_names_it(client: Client) -> None:
    bad_size = client.http.get("/readings?start_date=2023-01-01&page_size=lots")
    unknown = client.http.get("/readings?start_date=2023-01-01&color=red")
    assert (bad_size.status_code, bad_size.json_body["field"]) == (400, "page_size")
    assert (unknown.status_code, unknown.json_body["field"]) == (400, "color")


@pytest.mark.parametrize(
    "value", ["--5", "\u00b2", "\u0661\u0660", "9" * 5000, "1e3", "0x10", " ", ""], ids=repr
)
def test_get_readings_with_a_page_size_or_offset_that_is_no_integer_is_a_bad_request(
    client: Client, value: str
) -> None:
    # GIVEN a page size and an offset that int() or str.isdigit() would take differently
    # (two minus signs, a superscript two, Arabic-Indic digits, 5,000 digits, ...)
    for parameter in ("page_size", "offset"):
        # WHEN asking for a page with it
        response = client.http.get(f"/readings?start_date=2023-01-01&{parameter}={quote(value)}")
        # THEN a 400 names the parameter, never a 500
        assert (response.status_code, response.json_body["field"]) == (400, parameter), value[:20]


# -- POST /readings/file ---------------------------------------------------------------------------------


def test_post_readings_file_records_the_request_and_queues_it(client: Client, stack: InProcessStack) -> None:
    # WHEN requesting an export of one hour
    accepted = post_file_request(client, WINDOW)
    # THEN it is accepted as queued
    request_id = str(accepted["request_id"])
    assert accepted["status"] == "queued"
    # AND recorded in the file-requests table
    row = stack.item("file_requests", request_id=request_id)
    assert row is not None and row["status"] == "queued"
    # AND handed to the file-requests queue, for start_file_export
    message = stack.next_message("file_requests", lambda body: body.get("request_id") == request_id)
    assert json.loads(message)["start_date"] == "2023-01-02 00:00:00.000000"


def test_post_readings_file_with_a_body_that_is_not_json_is_a_bad_request(client: Client) -> None:
    response = client.http.post("/readings/file", headers=JSON, body=b"{not json")
    assert response.status_code == 400
    assert response.json_body["field"] == "body"


def test_post_readings_file_with_an_invalid_window_names_the_field(client: Client) -> None:
    backwards = {"start_date": WINDOW["end_date"], "end_date": WINDOW["start_date"]}
    response = client.http.post("/readings/file", headers=JSON, body=json.dumps(backwards).encode())
    assert (response.status_code, response.json_body["field"]) == (400, "end_date")
    unknown = client.http.post("/readings/file", headers=JSON, body=json.dumps(WINDOW | {"x": 1}).encode())
    assert (unknown.status_code, unknown.json_body["field"]) == (400, "x")


def test_post_readings_file_with_a_deeply_nested_body_is_a_bad_request(client: Client) -> None:
    response = client.http.post("/readings/file", headers=JSON, body=b"[" * 100_000)
    assert response.status_code == 400


def test_post_readings_file_as_anything_but_json_is_unsupported(client: Client) -> None:
    response = client.http.post(
        "/readings/file", headers={"Content-Type": "text/plain"}, body=json.dumps(WINDOW).encode()
    )
    assert response.status_code == 415


# -- GET /readings/file ----------------------------------------------------------------------------------


def test_get_readings_file_returns_the_requests_status(client: Client) -> None:
    # GIVEN a request accepted
    request_id = post_file_request(client, WINDOW)["request_id"]
    # WHEN asking for its status
    response = client.http.get(f"/readings/file?request_id={request_id}")
    # THEN its window and status come back
    assert response.status_code == 200
    assert response.json_body == {
        "request_id": request_id,
        "status": "queued",
        "start_date": "2023-01-02 00:00:00.000000",
        "end_date": "2023-01-02 01:00:00.000000",
        "window_by": "time",
    }


def test_get_readings_file_needs_a_uuid(client: Client) -> None:
    missing = client.http.get("/readings/file")
    malformed = client.http.get("/readings/file?request_id=not-a-uuid")
    assert (missing.status_code, missing.json_body["field"]) == (400, "request_id")
    assert (malformed.status_code, malformed.json_body["field"]) == (400, "request_id")


def test_get_readings_file_of_an_unknown_request_is_not_found(client: Client) -> None:
    response = client.http.get(f"/readings/file?request_id={uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json_body["error"] == "NotFound"
