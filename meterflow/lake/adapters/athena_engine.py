"""The lake's query engine in AWS: Athena over the Glue tables (partition projection prunes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from meterflow.lake.domain.queries import JsonScalar, QueryFailed, QueryResult, QueryTimeout, json_safe

logger = logging.getLogger("meterflow.lake.athena")

_DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_INTEGERS = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOATS = frozenset({"double", "float", "real", "decimal"})


class AthenaLakeEngine:
    """Runs SQL in an Athena workgroup (its result location and limits apply) against ``database``."""

    name = "athena"

    def __init__(
        self,
        athena_client: Any,
        workgroup: str,
        database: str,
        poll_interval: float = 0.5,
        timeout: float = 300,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = athena_client
        self.workgroup = workgroup
        self.database = database
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock

    def run(self, sql: str) -> QueryResult:
        started = self._client.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
        )
        execution_id = str(started["QueryExecutionId"])
        self._wait(execution_id)
        return self._results(execution_id)

    def _wait(self, execution_id: str) -> None:
        deadline = self._clock() + self.timeout
        while True:
            execution = self._client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State")
            if state == "SUCCEEDED":
                return
            if state in _DONE:
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                    "ErrorMessage", "no reason given"
                )
                raise QueryFailed(f"Athena query {execution_id} {state}: {reason}")
            if self._clock() >= deadline:
                try:
                    self._client.stop_query_execution(QueryExecutionId=execution_id)
                except ClientError:  # the timeout is the error to report; a failed stop is logged
                    logger.warning("could not stop Athena query %s", execution_id, exc_info=True)
                raise QueryTimeout(
                    f"Athena query {execution_id} did not finish within {self.timeout:g} s "
                    f"(last state {state}); Athena was asked to stop it"
                )
            self._sleep(self.poll_interval)

    def _results(self, execution_id: str) -> QueryResult:
        columns: list[str] = []
        types: list[str] = []
        rows: list[list[JsonScalar]] = []
        paginator = self._client.get_paginator("get_query_results")
        for number, page in enumerate(paginator.paginate(QueryExecutionId=execution_id)):
            result_set = page.get("ResultSet", {})
            page_rows = [_row_text(row) for row in result_set.get("Rows", [])]
            if number == 0:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [str(column.get("Label") or column["Name"]) for column in info]
                types = [str(column.get("Type", "varchar")).lower() for column in info]
                # A SELECT's first row repeats the column labels (DDL results have no such row).
                if page_rows and page_rows[0] == columns:
                    page_rows = page_rows[1:]
            rows.extend(
                [convert(text, kind) for text, kind in zip(row, types, strict=False)] for row in page_rows
            )
        return QueryResult(columns, rows)


def _row_text(row: Mapping[str, Any]) -> list[str | None]:
    return [cell.get("VarCharValue") for cell in row.get("Data", [])]


def convert(text: str | None, athena_type: str) -> JsonScalar:
    """A result cell (always text in GetQueryResults) as the JSON value of its column type."""
    if text is None:
        return None
    kind = athena_type.split("(", 1)[0].strip()
    try:
        if kind in _INTEGERS:
            return int(text)
        if kind in _FLOATS:
            return json_safe(float(text))
        if kind == "boolean":
            return text.lower() == "true"
        if kind == "timestamp":
            return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text  # an unexpected rendering: pass it on as text rather than lose the row
    return text  # varchar, char, date (already YYYY-MM-DD) and anything structured
