"""The bridge-jobs table (DynamoDB): one item per backfill job, keyed by job_id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from meterflow.bridge.domain.jobs import BridgeJob, BridgeJobStatus
from meterflow.core.errors import Conflict

# A finished job's item is kept this long (DynamoDB TTL).
JOB_RETENTION = timedelta(days=90)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": str(value)}


_NOT_ENDED = "#status IN (:queued, :dispatched, :running)"
_OPEN: Mapping[str, dict[str, str]] = {
    ":queued": _s("queued"),
    ":dispatched": _s("dispatched"),
    ":running": _s("running"),
}


class DynamoDbBridgeJobs:
    """One item per backfill job; ``token_sha256`` names the attempt whose messages are accepted."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, job: BridgeJob) -> None:
        item = {
            "job_id": _s(job.job_id),
            "tenant": _s(job.tenant),
            "worker": _s(job.worker),
            "job_type": _s(job.job_type),
            "status": _s(job.status.value),
            "created_at": _s(job.created_at.isoformat()),
            "updated_at": _s(job.updated_at.isoformat()),
            "attempts": _n(0),
            "fraction": _n(0),
            "rows": _n(0),
            "expires_at": _n(int((job.created_at + JOB_RETENTION - datetime(1970, 1, 1)).total_seconds())),
        }
        if job.window_start is not None and job.window_end is not None:
            item["window_start"] = _s(job.window_start.isoformat())
            item["window_end"] = _s(job.window_end.isoformat())
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(job_id)"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"job {job.job_id} exists", field="job_id") from exc
            raise

    def get(self, job_id: str) -> BridgeJob | None:
        item = self._client.get_item(
            TableName=self._table, Key={"job_id": _s(job_id)}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None

        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        def number(name: str) -> Decimal:
            return Decimal(item[name]["N"]) if name in item else Decimal(0)

        def moment(name: str) -> datetime | None:
            value = text(name)
            return (
                datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None) if value else None
            )

        return BridgeJob(
            job_id=job_id,
            tenant=str(text("tenant")),
            worker=str(text("worker")),
            job_type=str(text("job_type")),
            status=BridgeJobStatus(str(text("status"))),
            created_at=moment("created_at") or datetime(1970, 1, 1),
            updated_at=moment("updated_at") or datetime(1970, 1, 1),
            window_start=moment("window_start"),
            window_end=moment("window_end"),
            attempts=int(number("attempts")),
            attempt=int(number("attempt")),
            token_sha256=text("token_sha256"),
            fraction=float(number("fraction")),
            rows=int(number("rows")),
            output=json.loads(text("output") or "{}"),
            failure_reason=text("failure_reason"),
        )

    def dispatched(self, job_id: str, token_sha256: str, attempt: int, at: datetime) -> None:
        self._update_rows(
            job_id,
            "SET #status = :dispatched, token_sha256 = :token, attempt = :attempt, updated_at = :at, "
            "fraction = :zero, #rows = :zero ADD attempts :one",
            {
                **_OPEN,
                ":token": _s(token_sha256),
                ":attempt": _n(attempt),
                ":at": _s(at.isoformat()),
                ":zero": _n(0),
                ":one": _n(1),
            },
        )

    def _update_rows(self, job_id: str, expression: str, values: dict[str, Any]) -> None:
        """An update of a job that has not ended ("rows" is a reserved word, hence #rows)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": _s(job_id)},
                UpdateExpression=expression,
                ConditionExpression=_NOT_ENDED,
                ExpressionAttributeNames={
                    "#status": "status",
                    **({"#rows": "rows"} if "#rows" in expression else {}),
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def progressed(self, job_id: str, fraction: float, rows: int, at: datetime) -> None:
        self._update_rows(
            job_id,
            "SET #status = :running, fraction = :fraction, #rows = :rows, updated_at = :at",
            {**_OPEN, ":fraction": _n(fraction), ":rows": _n(rows), ":at": _s(at.isoformat())},
        )

    def claim_answer(self, job_id: str, attempt: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": _s(job_id)},
                UpdateExpression="SET answered_attempt = :attempt",
                ConditionExpression="attribute_exists(job_id) AND "
                "(attribute_not_exists(answered_attempt) OR answered_attempt < :attempt)",
                ExpressionAttributeValues={":attempt": _n(attempt)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_answer(self, job_id: str, attempt: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": _s(job_id)},
                UpdateExpression="SET answered_attempt = :previous",
                ConditionExpression="answered_attempt = :attempt",
                ExpressionAttributeValues={":attempt": _n(attempt), ":previous": _n(attempt - 1)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def attempt_failed(self, job_id: str, reason: str, at: datetime) -> None:
        self._update_rows(
            job_id,
            "SET failure_reason = :reason, updated_at = :at",
            {**_OPEN, ":reason": _s(reason[:2048]), ":at": _s(at.isoformat())},
        )

    def ended(
        self,
        job_id: str,
        status: BridgeJobStatus,
        at: datetime,
        output: Mapping[str, Any] | None = None,
        failure_reason: str | None = None,
    ) -> None:
        expression = "SET #status = :status, updated_at = :at"
        values: dict[str, Any] = {":status": _s(status.value), ":at": _s(at.isoformat())}
        if output is not None:
            expression += ", #output = :output"
            values[":output"] = _s(json.dumps(dict(output), sort_keys=True))
        if failure_reason is not None:
            expression += ", failure_reason = :reason"
            values[":reason"] = _s(failure_reason[:2048])
        # an ended job stays ended, except that an upload becomes succeeded once verified
        values.update({":uploaded": _s("uploaded"), **_OPEN})
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"job_id": _s(job_id)},
                UpdateExpression=expression,
                ConditionExpression="#status IN (:queued, :dispatched, :running, :uploaded)",
                ExpressionAttributeNames={
                    "#status": "status",
                    **({"#output": "output"} if output is not None else {}),
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
