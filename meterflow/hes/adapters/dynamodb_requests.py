"""File requests in DynamoDB (one item per request, keyed by request_id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from meterflow.core.errors import Conflict
from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.hes.domain.export import REQUEST_RETENTION, ExportStatus, FileRequest, WindowBy


def _now_text() -> str:
    return datetime.now(tz=UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class DynamoDbFileRequestRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, request: FileRequest) -> None:
        expires_at = int((request.created_at + REQUEST_RETENTION - datetime(1970, 1, 1)).total_seconds())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "request_id": {"S": request.request_id},
                    "status": {"S": request.status.value},
                    "start_date": {"S": format_hes_time(request.start_date)},
                    "end_date": {"S": format_hes_time(request.end_date)},
                    "window_by": {"S": request.window_by.value},
                    "created_at": {"S": request.created_at.isoformat(timespec="milliseconds") + "Z"},
                    "updated_at": {"S": request.updated_at.isoformat(timespec="milliseconds") + "Z"},
                    "expires_at": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(request_id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(
                    f"file request {request.request_id} already exists", field="request_id"
                ) from exc
            raise

    def get(self, request_id: str) -> FileRequest | None:
        item = self._client.get_item(
            TableName=self._table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
        )
        if "Item" not in item:
            return None
        return _from_item(item["Item"])

    def advance(self, request_id: str, status: ExportStatus, allowed_from: Sequence[ExportStatus]) -> bool:
        names = {f":from{i}": {"S": s.value} for i, s in enumerate(allowed_from)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"request_id": {"S": request_id}},
                UpdateExpression="SET #status = :to, updated_at = :now",
                ConditionExpression=f"attribute_exists(request_id) AND #status IN ({', '.join(names)})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":to": {"S": status.value}, ":now": {"S": _now_text()}, **names},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def fail(self, request_id: str, reason: str) -> None:
        """Marks a request failed; one that does not exist (expired) stays absent."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"request_id": {"S": request_id}},
                UpdateExpression="SET #status = :failed, updated_at = :now, failure_reason = :reason",
                # without it, DynamoDB would create a partial item that get() cannot read
                ConditionExpression="attribute_exists(request_id)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":failed": {"S": ExportStatus.FAILED.value},
                    ":now": {"S": _now_text()},
                    ":reason": {"S": reason[:2000]},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _from_item(item: dict[str, Any]) -> FileRequest:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    count = item.get("record_count")
    return FileRequest(
        request_id=item["request_id"]["S"],
        status=ExportStatus(item["status"]["S"]),
        start_date=parse_hes_time(item["start_date"]["S"], "start_date"),
        end_date=parse_hes_time(item["end_date"]["S"], "end_date"),
        # rows written before exports by arrival existed selected by time
        window_by=WindowBy(text("window_by") or WindowBy.TIME.value),
        created_at=_parse_stamp(item["created_at"]["S"]),
        updated_at=_parse_stamp(item["updated_at"]["S"]),
        sftp_location=text("sftp_location"),
        record_count=None if count is None else int(count["N"]),
        failure_reason=text("failure_reason"),
    )
