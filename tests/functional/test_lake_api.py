"""Lake route: GET /lake/queries/{name}, answered by the AWS query engine (Athena, in moto)."""

from __future__ import annotations

from chalice.test import Client

from tests.support.inprocess_stack import InProcessStack

HOURLY_LOAD = "/lake/queries/hourly_fleet_load?start=2023-01-02T00:00:00&end=2023-01-02T02:00:00"


def test_run_lake_query_renders_the_named_query_runs_it_and_types_the_rows(
    client: Client, stack: InProcessStack
) -> None:
    # GIVEN what Athena will answer: two hours of fleet load, every cell as text (as Athena does)
    stack.answer_next_athena_query(
        [("hour_start", "timestamp"), ("total_kw", "double"), ("kwh", "double"), ("meter_count", "bigint")],
        [
            ["2023-01-02 00:00:00.000", "1200.5", "300.125", "9980"],
            ["2023-01-02 01:00:00.000", "1100.0", "275.0", "9981"],
        ],
    )
    # WHEN running the hourly fleet load for those two hours
    response = client.http.get(HOURLY_LOAD)
    # THEN the rows come back typed by their columns, with the parameters as the query read them
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["query"] == "hourly_fleet_load"
    assert body["engine"] == "athena"
    assert body["parameters"] == {"start": "2023-01-02T00:00:00", "end": "2023-01-02T02:00:00"}
    assert body["columns"] == ["hour_start", "total_kw", "kwh", "meter_count"]
    assert body["rows"] == [
        ["2023-01-02T00:00:00", 1200.5, 300.125, 9980],
        ["2023-01-02T01:00:00", 1100.0, 275.0, 9981],
    ]
    assert body["row_count"] == 2
    # AND the SQL Athena ran reads only the window's partitions and readings
    sql = stack.athena_queries()[-1]
    assert "FROM readings" in sql
    assert "2023-01-02 02:00:00" in sql


def test_run_lake_query_of_an_unknown_name_is_not_found_and_lists_the_known_ones(client: Client) -> None:
    response = client.http.get("/lake/queries/drop_table")
    assert response.status_code == 404
    assert "hourly_fleet_load" in response.json_body["message"]


def test_run_lake_query_with_missing_unknown_or_invalid_parameters_names_them(
    client: Client, stack: InProcessStack
) -> None:
    queries_before = len(stack.athena_queries())
    missing = client.http.get("/lake/queries/hourly_fleet_load?start=2023-01-02T00:00:00")
    unknown = client.http.get(f"{HOURLY_LOAD}&color=red")
    backwards = client.http.get("/lake/queries/hourly_fleet_load?start=2023-01-02&end=2023-01-01")
    injected = client.http.get(
        "/lake/queries/meter_readings?meter_id=x%27%20OR%201=1--&start=2023-01-01&end=2023-01-02"
        "&reading_type=kw"
    )
    assert (missing.status_code, missing.json_body["field"]) == (400, "end")
    assert (unknown.status_code, unknown.json_body["field"]) == (400, "color")
    assert (backwards.status_code, backwards.json_body["field"]) == (400, "end")
    assert (injected.status_code, injected.json_body["field"]) == (400, "meter_id")
    # AND none of them reached Athena
    assert len(stack.athena_queries()) == queries_before
