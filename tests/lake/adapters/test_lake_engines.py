"""Both lake engines against a real endpoint: DuckDB over moto's S3, Athena through moto's API.

moto does not execute Athena SQL: a test queues the result Athena would return through moto's
``/moto-api/static/athena/query-results`` and checks what the engine sent and how it converted the
answer. Failure and paging, which moto cannot produce, run against botocore's Stubber.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from meterflow.lake.adapters.athena_engine import AthenaLakeEngine, convert
from meterflow.lake.adapters.duckdb_engine import DuckDbLakeEngine, s3_filesystem_from_boto3
from meterflow.lake.domain.queries import QueryFailed, QueryTimeout, named_query, run_named_query
from meterflow.lake.domain.schema import LONG_SCHEMA, PartitionKey
from meterflow.localcloud.net import free_port

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
WORKGROUP = "meterflow-lake"
DATABASE = "meterflow_lake"
METER = "MTR-1"

# (reading_type, reading_date_time, kW or kWh) of one meter: two kw hours and one kwh hour.
ROWS = (
    ("kw", "2024-02-29 00:00", 1.0),
    ("kw", "2024-02-29 00:15", 3.0),
    ("kw", "2024-02-29 01:00", 2.0),
    ("kwh", "2024-03-01 23:30", 0.5),
)
LAKE_STATS_ROWS = [
    ["kw", 2, 3, "2024-02-29T00:00:00", "2024-02-29T01:00:00"],
    ["kwh", 1, 1, "2024-03-01T23:30:00", "2024-03-01T23:30:00"],
]


def partition_objects(rows: tuple[tuple[str, str, float], ...]) -> dict[str, bytes]:
    """The lake's Parquet objects for ``rows``, keyed by object key."""
    grouped: dict[PartitionKey, list[tuple[str, str, float]]] = {}
    for row in rows:
        grouped.setdefault(PartitionKey.of(row[0], datetime.fromisoformat(row[1])), []).append(row)
    objects = {}
    for key, members in grouped.items():
        table = pa.Table.from_pylist(
            [
                {
                    "meter_id": METER,
                    "reading_value": value,
                    "reading_date_time": datetime.fromisoformat(moment),
                    "unit": "kW" if kind == "kw" else "kWh",
                    "obis_code": "1.0.1.7.0.255",
                    "phase": "total",
                    "reading_source": "hes",
                }
                for kind, moment, value in members
            ],
            schema=LONG_SCHEMA,
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        objects[key.object_key] = sink.getvalue()
    return objects


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """GIVEN moto server on a free local port."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="meterflow-test", aws_secret_access_key="meterflow-test", region_name=REGION
    )


@pytest.fixture(scope="module")
def s3(endpoint: str, session: boto3.session.Session) -> Any:
    return session.client("s3", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def lake_bucket(s3: Any) -> str:
    """GIVEN an integrated bucket holding three hourly partitions."""
    bucket = "meterflow-lake-engines-test"
    s3.create_bucket(Bucket=bucket)
    for key, body in partition_objects(ROWS).items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket


@pytest.fixture
def duckdb_engine(s3: Any, session: boto3.session.Session, lake_bucket: str) -> Iterator[DuckDbLakeEngine]:
    engine = DuckDbLakeEngine(s3_filesystem_from_boto3(s3, session), lake_bucket)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def athena_client(endpoint: str, session: boto3.session.Session, s3: Any) -> Any:
    client = session.client("athena", endpoint_url=endpoint)
    s3.create_bucket(Bucket="meterflow-athena-results")
    client.create_work_group(
        Name=WORKGROUP,
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://meterflow-athena-results/"}},
    )
    return client


@pytest.fixture
def athena(athena_client: Any) -> AthenaLakeEngine:
    return AthenaLakeEngine(athena_client, WORKGROUP, DATABASE, poll_interval=0)


def queue_athena_result(endpoint: str, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """Queue the answer of moto's next Athena query, header row first, as GetQueryResults has it."""
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    data = [{"Data": [{} if cell is None else {"VarCharValue": cell} for cell in row]} for row in rows]
    column_info = [
        {
            "CatalogName": "hive",
            "SchemaName": DATABASE,
            "TableName": "",
            "Name": name,
            "Label": name,
            "Type": kind,
        }
        for name, kind in columns
    ]
    response = requests.post(
        f"{endpoint}/moto-api/static/athena/query-results",
        json={
            "account_id": ACCOUNT_ID,
            "region": REGION,
            "results": [{"rows": [header, *data], "column_info": column_info}],
        },
        timeout=10,
    )
    assert response.status_code == 201


@pytest.fixture
def athena_polls(endpoint: str) -> Iterator[Callable[[int], None]]:
    """Make moto's Athena queries advance one state (QUEUED, RUNNING, SUCCEEDED) per ``n`` polls."""

    def advance_every(polls: int) -> None:
        requests.post(
            f"{endpoint}/moto-api/state-manager/set-transition",
            json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}},
            timeout=10,
        ).raise_for_status()

    yield advance_every
    requests.post(
        f"{endpoint}/moto-api/state-manager/unset-transition",
        json={"model_name": "athena::execution"},
        timeout=10,
    ).raise_for_status()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 1.0)


# ------------------------------------------------------------------------------------- DuckDB on S3
def test_duckdb_reads_the_lake_through_the_s3_endpoint_of_a_boto3_client(
    duckdb_engine: DuckDbLakeEngine,
) -> None:
    # WHEN lake_stats runs over the bucket on moto
    answer = run_named_query("lake_stats", {}, duckdb_engine)
    # THEN it counts the partitions and rows put there
    assert answer["rows"] == LAKE_STATS_ROWS
    assert answer["engine"] == "duckdb"


def test_duckdb_on_s3_answers_a_windowed_query(duckdb_engine: DuckDbLakeEngine) -> None:
    params = {"meter_id": METER, "start_date": "2024-02-29", "end_date": "2024-03-01"}
    answer = run_named_query("daily_consumption", params, duckdb_engine)
    # THEN 0.25 h x (1 + 3 + 2) kW on the 29th, 0.5 kWh on the 1st
    assert answer["rows"] == [["2024-02-29", 1.5, 3, 0], ["2024-03-01", 0.5, 0, 1]]


def test_duckdb_on_s3_sees_new_objects_and_empty_prefixes(s3: Any, session: boto3.session.Session) -> None:
    # GIVEN an engine over an empty bucket
    s3.create_bucket(Bucket="meterflow-lake-empty-test")
    engine = DuckDbLakeEngine(s3_filesystem_from_boto3(s3, session), "meterflow-lake-empty-test")
    try:
        assert run_named_query("lake_stats", {}, engine)["rows"] == []
        # WHEN a partition lands THEN the next query sees it
        for key, body in partition_objects(ROWS[:1]).items():
            s3.put_object(Bucket="meterflow-lake-empty-test", Key=key, Body=body)
        assert run_named_query("lake_stats", {}, engine)["rows"] == [
            ["kw", 1, 1, "2024-02-29T00:00:00", "2024-02-29T00:00:00"]
        ]
    finally:
        engine.close()


def test_duckdb_refuses_a_bucket_that_does_not_exist(s3: Any, session: boto3.session.Session) -> None:
    with pytest.raises(FileNotFoundError, match="no bucket 'meterflow-no-such-bucket' on the s3 filesystem"):
        DuckDbLakeEngine(s3_filesystem_from_boto3(s3, session), "meterflow-no-such-bucket")


def test_the_s3_filesystem_takes_region_and_credentials_from_the_client(s3: Any, lake_bucket: str) -> None:
    # GIVEN no session: credentials come from the client's own signer
    filesystem = s3_filesystem_from_boto3(s3)
    # THEN it reads the bucket at the client's endpoint, in the client's region
    assert filesystem.region == REGION
    listed = filesystem.get_file_info(
        f"{lake_bucket}/readings/parquet/reading_type=kwh/year=2024/month=03/day=01"
    )
    assert listed.type.name == "Directory"


# ------------------------------------------------------------------------------------- Athena via moto
def test_athena_runs_the_named_query_in_the_workgroup_and_converts_by_column_type(
    athena: AthenaLakeEngine, athena_client: Any, endpoint: str
) -> None:
    # GIVEN Athena's answer to lake_stats, as text, the way GetQueryResults returns it
    queue_athena_result(
        endpoint,
        [
            ("reading_type", "varchar"),
            ("partitions", "bigint"),
            ("row_count", "bigint"),
            ("first_reading", "timestamp"),
            ("last_reading", "timestamp"),
        ],
        [
            ["kw", "2", "3", "2024-02-29 00:00:00.000", "2024-02-29 01:00:00.000"],
            ["kwh", "1", "1", "2024-03-01 23:30:00.000", "2024-03-01 23:30:00.000"],
        ],
    )
    # WHEN the named query runs on Athena
    answer = run_named_query("lake_stats", {}, athena)
    # THEN the answer has the same shape and values the DuckDB engine gives
    assert answer == {
        "query": "lake_stats",
        "engine": "athena",
        "parameters": {},
        "columns": ["reading_type", "partitions", "row_count", "first_reading", "last_reading"],
        "rows": LAKE_STATS_ROWS,
        "row_count": 2,
    }
    # ... and the rendered SQL went to the workgroup, against the lake's database
    executions = athena_client.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    sent = athena_client.get_query_execution(QueryExecutionId=executions[-1])["QueryExecution"]
    assert sent["Query"] == named_query("lake_stats").render({}).sql
    assert sent["QueryExecutionContext"] == {"Database": DATABASE}
    assert sent["WorkGroup"] == WORKGROUP


def test_athena_converts_nulls_booleans_dates_and_doubles(athena: AthenaLakeEngine, endpoint: str) -> None:
    queue_athena_result(
        endpoint,
        [("day", "date"), ("kwh", "double"), ("n", "integer"), ("ok", "boolean"), ("note", "varchar")],
        [["2024-02-29", "1.5E-1", "7", "true", None], ["2024-03-01", "NaN", None, "false", "x"]],
    )
    result = athena.run("SELECT 1")
    assert result.columns == ["day", "kwh", "n", "ok", "note"]
    assert result.rows == [["2024-02-29", 0.15, 7, True, None], ["2024-03-01", None, None, False, "x"]]


def test_athena_polls_until_the_query_succeeds(
    athena_client: Any, endpoint: str, athena_polls: Callable[[int], None]
) -> None:
    # GIVEN a query that takes four polls to succeed
    athena_polls(2)
    clock = FakeClock()
    engine = AthenaLakeEngine(
        athena_client, WORKGROUP, DATABASE, poll_interval=0.25, sleep=clock.sleep, clock=clock
    )
    queue_athena_result(endpoint, [("n", "bigint")], [["1"]])
    # WHEN it runs THEN the engine waited between polls and returned the rows
    assert engine.run("SELECT 1 AS n").rows == [[1]]
    assert clock.sleeps == [0.25, 0.25, 0.25]


def test_athena_stops_a_query_that_outlives_the_timeout(
    athena_client: Any, athena_polls: Callable[[int], None]
) -> None:
    # GIVEN a query that never leaves QUEUED and an engine with a 3 s timeout
    athena_polls(1_000_000)
    clock = FakeClock()
    engine = AthenaLakeEngine(
        athena_client, WORKGROUP, DATABASE, poll_interval=1, timeout=3, sleep=clock.sleep, clock=clock
    )
    # WHEN it runs THEN it times out, says so, and the query was stopped
    with pytest.raises(
        QueryTimeout, match=r"did not finish within 3 s \(last state QUEUED\); Athena was asked to stop it"
    ):
        engine.run("SELECT 1")
    executions = athena_client.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    state = athena_client.get_query_execution(QueryExecutionId=executions[-1])["QueryExecution"]["Status"][
        "State"
    ]
    assert state == "CANCELLED"


# ------------------------------------------------------------------------------------- Athena via Stubber
@pytest.fixture
def stubbed(session: boto3.session.Session) -> Iterator[tuple[AthenaLakeEngine, Stubber]]:
    client = session.client("athena")
    with Stubber(client) as stubber:
        yield AthenaLakeEngine(client, WORKGROUP, DATABASE, poll_interval=0), stubber
        stubber.assert_no_pending_responses()


def _expect_start(stubber: Stubber, sql: str) -> None:
    stubber.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {"QueryString": sql, "QueryExecutionContext": {"Database": DATABASE}, "WorkGroup": WORKGROUP},
    )


def _expect_state(stubber: Stubber, state: str, reason: str | None = None) -> None:
    status: dict[str, Any] = {"State": state}
    if reason is not None:
        status["StateChangeReason"] = reason
    stubber.add_response(
        "get_query_execution",
        {"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}},
        {"QueryExecutionId": "q-1"},
    )


def test_a_failed_athena_query_raises_with_athenas_reason(stubbed: tuple[AthenaLakeEngine, Stubber]) -> None:
    engine, stubber = stubbed
    _expect_start(stubber, "SELECT nope")
    _expect_state(stubber, "RUNNING")
    _expect_state(stubber, "FAILED", "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved")
    with pytest.raises(
        QueryFailed, match="q-1 FAILED: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    ):
        engine.run("SELECT nope")


def test_a_cancelled_athena_query_raises(stubbed: tuple[AthenaLakeEngine, Stubber]) -> None:
    engine, stubber = stubbed
    _expect_start(stubber, "SELECT 1")
    _expect_state(stubber, "CANCELLED")
    with pytest.raises(QueryFailed, match="q-1 CANCELLED: no reason given"):
        engine.run("SELECT 1")


def test_a_timeout_is_reported_even_if_stopping_the_query_fails(session: boto3.session.Session) -> None:
    # GIVEN a query still running at the deadline, and a StopQueryExecution that is refused
    client = session.client("athena")
    clock = FakeClock()
    engine = AthenaLakeEngine(
        client, WORKGROUP, DATABASE, poll_interval=5, timeout=5, sleep=clock.sleep, clock=clock
    )
    with Stubber(client) as stubber:
        _expect_start(stubber, "SELECT 1")
        _expect_state(stubber, "RUNNING")
        _expect_state(stubber, "RUNNING")
        stubber.add_client_error("stop_query_execution", "InvalidRequestException", "not allowed")
        # WHEN it runs THEN the timeout is what the caller learns
        with pytest.raises(QueryTimeout, match="did not finish within 5 s"):
            engine.run("SELECT 1")
        stubber.assert_no_pending_responses()


def test_athena_results_are_read_across_pages_skipping_only_the_header(
    stubbed: tuple[AthenaLakeEngine, Stubber],
) -> None:
    # GIVEN a result in two pages; only the first starts with the header row
    engine, stubber = stubbed
    _expect_start(stubber, "SELECT meter_id, n FROM t")
    _expect_state(stubber, "SUCCEEDED")
    metadata = {
        "ColumnInfo": [
            {"Name": "meter_id", "Label": "meter_id", "Type": "varchar"},
            {"Name": "n", "Label": "n", "Type": "bigint"},
        ]
    }

    def row(*cells: str) -> dict[str, Any]:
        return {"Data": [{"VarCharValue": cell} for cell in cells]}

    stubber.add_response(
        "get_query_results",
        {
            "ResultSet": {"Rows": [row("meter_id", "n"), row("a", "1")], "ResultSetMetadata": metadata},
            "NextToken": "p2",
        },
        {"QueryExecutionId": "q-1"},
    )
    stubber.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [row("b", "2"), row("c", "3")], "ResultSetMetadata": metadata}},
        {"QueryExecutionId": "q-1", "NextToken": "p2"},
    )
    # WHEN it runs THEN every data row of both pages is there, in order
    result = engine.run("SELECT meter_id, n FROM t")
    assert result.columns == ["meter_id", "n"]
    assert result.rows == [["a", 1], ["b", 2], ["c", 3]]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("42", "bigint", 42),
        ("-3", "smallint", -3),
        ("2.5", "double", 2.5),
        ("Infinity", "double", None),
        ("12.30", "decimal(10,2)", 12.3),
        ("TRUE", "boolean", True),
        ("2024-02-29 13:45:00.123", "timestamp", "2024-02-29T13:45:00.123000"),
        ("2024-02-29 13:45:00.000 UTC", "timestamp with time zone", "2024-02-29 13:45:00.000 UTC"),
        ("2024-02-29", "date", "2024-02-29"),
        ("[1, 2]", "array(integer)", "[1, 2]"),
        (None, "bigint", None),
    ],
)
def test_athena_cells_convert_by_type(text: str | None, kind: str, expected: object) -> None:
    assert convert(text, kind) == expected
