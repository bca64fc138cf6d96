"""In-memory lake ports for unit tests: the same contract as the S3 and EventBridge adapters."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from meterflow.lake.ports import ConcurrentUpdate, ObjectInfo, VersionedObject


class MemoryLakeStore:
    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, VersionedObject] = {}

    def head(self, key: str) -> ObjectInfo | None:
        found = self.objects.get(key)
        return None if found is None else ObjectInfo(len(found.data), found.etag, found.metadata)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        return self.objects[key].data[start:end]

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
        self.objects[key] = VersionedObject(bytes(data), etag, dict(metadata or {}))

    def upload_stream(
        self, key: str, chunks: Iterable[bytes], metadata: Mapping[str, str] | None = None
    ) -> int:
        data = b"".join(chunks)
        self.put(key, data, metadata=metadata)
        return len(data)

    def stream(self, key: str, chunk_bytes: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        data = self.objects[key].data
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
