"""Export files and their chunks in S3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from meterflow.hes.ports import StoredObject

_RECORD_COUNT = "record-count"


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, record_count: int) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType="application/gzip",
            Metadata={_RECORD_COUNT: str(record_count)},
        )

    def head(self, key: str) -> StoredObject | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        count = response.get("Metadata", {}).get(_RECORD_COUNT)
        return StoredObject(key, int(response["ContentLength"]), None if count is None else int(count))

    def compose(
        self, target_key: str, part_groups: Sequence[Sequence[StoredObject]], record_count: int
    ) -> int:
        upload = self._client.create_multipart_upload(
            Bucket=self.bucket,
            Key=target_key,
            ContentType="application/gzip",
            Metadata={_RECORD_COUNT: str(record_count)},
        )
        upload_id = upload["UploadId"]
        try:
            parts = [
                {"PartNumber": number, "ETag": self._upload_part(target_key, upload_id, number, group)}
                for number, group in enumerate(part_groups, start=1)
            ]
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=target_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=target_key, UploadId=upload_id)
            raise
        return sum(item.size for group in part_groups for item in group)

    def _upload_part(self, key: str, upload_id: str, number: int, group: Sequence[StoredObject]) -> str:
        if len(group) == 1:
            # Large chunks never travel through the worker: S3 copies them server-side.
            copied = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": group[0].key},
            )
            return str(copied["CopyPartResult"]["ETag"])
        body = b"".join(
            self._client.get_object(Bucket=self.bucket, Key=item.key)["Body"].read() for item in group
        )
        uploaded = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return str(uploaded["ETag"])

    def delete_prefix(self, prefix: str) -> None:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
