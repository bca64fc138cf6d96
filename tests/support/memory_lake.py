"""In-memory lake ports for unit tests, behaving as their boto3 adapters do against AWS.

``tests/lake/adapters/test_port_contracts.py`` runs one suite against these fakes and against the
S3, DynamoDB and EventBridge adapters on moto: a difference fails there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from meterflow.lake.domain.integrations import Integration
from meterflow.lake.ports import ConcurrentUpdate, ObjectInfo, VersionedObject


def _s3_error(code: str, operation: str, key: str) -> ClientError:
    """The error the S3 adapter lets through (it maps only absence and lost races to the port's terms)."""
    return ClientError({"Error": {"Code": code, "Message": f"{code}: {key}"}}, operation)


class MemoryLakeStore:
    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, VersionedObject] = {}

    def head(self, key: str) -> ObjectInfo | None:
        found = self.objects.get(key)
        return None if found is None else ObjectInfo(len(found.data), found.etag, found.metadata)

    def _data(self, key: str, operation: str) -> bytes:
        found = self.objects.get(key)
        if found is None:
            raise _s3_error("NoSuchKey", operation, key)
        return found.data

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""  # the adapter asks S3 nothing
        data = self._data(key, "GetObject")
        if start >= len(data):
            raise _s3_error("InvalidRange", "GetObject", key)  # a range S3 cannot satisfy, not a short read
        return data[start:end]

    def get(self, key: str) -> VersionedObject | None:
        return self.objects.get(key)

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
        current = self.objects.get(key)
        if if_absent and current is not None:
            raise ConcurrentUpdate(key)
        if if_match is not None and (current is None or current.etag != if_match):
            raise ConcurrentUpdate(key)
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        # S3 keeps user metadata names in lower case
        stored = {name.lower(): value for name, value in (metadata or {}).items()}
        self.objects[key] = VersionedObject(bytes(data), etag, stored)

    def upload_stream(
        self, key: str, chunks: Iterable[bytes], metadata: Mapping[str, str] | None = None
    ) -> int:
        data = b"".join(chunks)
        self.put(key, data, metadata=metadata)
        return len(data)

    def stream(self, key: str, chunk_bytes: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        data = self._data(key, "GetObject")
        for start in range(0, len(data), chunk_bytes):
            yield data[start : start + chunk_bytes]

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.events.append((detail_type, dict(detail)))


class MemoryIntegrations:
    """The integrations table: one item per integration id (an Integration is frozen: no copies needed)."""

    def __init__(self, *integrations: Integration) -> None:
        self.items = {integration.integration_id: integration for integration in integrations}

    def get(self, integration_id: str) -> Integration | None:
        return self.items.get(integration_id)

    def put(self, integration: Integration) -> None:
        self.items[integration.integration_id] = integration

    def all(self) -> list[Integration]:
        return [self.items[key] for key in sorted(self.items)]

    def reset(self, integration_id: str) -> bool:
        """A failed integration goes back to idle for a new attempt, its window and schedule kept;
        False if it had not failed."""
        current = self.items.get(integration_id)
        if current is None or current.state != "failed":
            return False
        self.items[integration_id] = current.model_copy(
            update={"state": "idle", "failure_reason": None, "attempt": current.attempt + 1}
        )
        return True
