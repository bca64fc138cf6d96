"""Uploads into the inbound bucket (S3): presigned PUTs and the size of what arrived."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError


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
