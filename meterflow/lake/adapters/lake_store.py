"""A lake bucket in S3: ranged reads, conditional writes, streaming uploads, listing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from meterflow.lake.ports import ConcurrentUpdate, ObjectInfo, VersionedObject

_MISSING = {"404", "NoSuchKey", "NotFound"}
_RACE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_PART_BYTES = 8 * 1024 * 1024  # above S3's 5 MiB minimum part size


class S3LakeStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise
        return ObjectInfo(int(response["ContentLength"]), response["ETag"], response.get("Metadata", {}))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        return bytes(response["Body"].read())

    def get(self, key: str) -> VersionedObject | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return None
            raise
        return VersionedObject(response["Body"].read(), response["ETag"], response.get("Metadata", {}))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> None:
        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
            "Metadata": dict(metadata or {}),
        }
        if if_match is not None:
            arguments["IfMatch"] = if_match
        if if_absent:
            arguments["IfNoneMatch"] = "*"
        try:
            self._client.put_object(**arguments)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _RACE or (if_match is not None and code in _MISSING):  # deleted since it was read
                raise ConcurrentUpdate(f"s3://{self.bucket}/{key} changed since it was read") from exc
            raise

    def upload_stream(
        self, key: str, chunks: Iterable[bytes], metadata: Mapping[str, str] | None = None
    ) -> int:
        """Multipart upload of the stream; a stream smaller than one part is a single PUT."""
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= _PART_BYTES:
                    if upload_id is None:
                        upload_id = self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, Metadata=dict(metadata or {})
                        )["UploadId"]
                    part, buffer = bytes(buffer[:_PART_BYTES]), buffer[_PART_BYTES:]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                self.put(key, bytes(buffer), metadata=metadata)
                return size
            if buffer:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException:
            if upload_id is not None:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        response = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def stream(self, key: str, chunk_bytes: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(chunk_bytes)
        finally:
            body.close()

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if response.get("Errors"):
                raise RuntimeError(
                    f"could not delete {len(response['Errors'])} objects: {response['Errors'][:3]}"
                )


class EventBridgePublisher:
    """Publishes lake events on the default bus; a rule routes each detail type to its consumer."""

    def __init__(self, client: Any, source: str, bus_name: str = "default") -> None:
        self._client = client
        self._source = source
        self._bus = bus_name

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, sort_keys=True),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            # An event that was not accepted must fail the job (and be retried), never vanish.
            raise RuntimeError(f"EventBridge rejected {detail_type}: {response['Entries']}")
