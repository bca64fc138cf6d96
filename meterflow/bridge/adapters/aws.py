"""Adapters of the on-premises bridge: the bridge-jobs table, site publishers, upload presigning."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from meterflow.bridge.domain.jobs import BridgeJob, BridgeJobStatus
from meterflow.bridge.ports import PublishFailed
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


class IotDataSitePublisher:
    """AWS IoT Core: ``iot-data`` Publish with QoS 1 (the broker acknowledges before it returns)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def publish(self, topic_name: str, payload: bytes) -> None:
        try:
            self._client.publish(topic=topic_name, qos=1, payload=payload)
        except (BotoCoreError, ClientError) as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc


class MqttSitePublisher:
    """Any MQTT broker (Mosquitto, the embedded one) through one paho client with the bridge identity.

    ``client`` is a connected ``paho.mqtt.client.Client`` whose network loop runs; a publish waits
    for the broker's PUBACK up to ``ack_timeout_s``.
    """

    def __init__(self, client: Any, ack_timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout = ack_timeout_s
        self._lock = threading.Lock()

    def publish(self, topic_name: str, payload: bytes) -> None:
        with self._lock:
            if not self._client.is_connected():
                raise PublishFailed("not connected to the broker")
            info = self._client.publish(topic_name, payload, qos=1)
        try:
            info.wait_for_publish(timeout=self._timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishFailed(str(exc)) from exc
        if not info.is_published():
            raise PublishFailed(f"no acknowledgement from the broker within {self._timeout} s (rc {info.rc})")


class S3UploadPresigner:
    """Presigned PUTs into one bucket, with the object's metadata signed into the URL."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presign_put(
        self, key: str, metadata: Mapping[str, str], lifetime: timedelta
    ) -> tuple[str, dict[str, str]]:
        url = self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "Metadata": dict(metadata),
                "ContentType": "text/csv",
            },
            ExpiresIn=int(lifetime.total_seconds()),
        )
        headers = {f"x-amz-meta-{name}": value for name, value in metadata.items()}
        headers["Content-Type"] = "text/csv"
        return str(url), headers


class S3ObjectHead:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def size_of(self, key: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
