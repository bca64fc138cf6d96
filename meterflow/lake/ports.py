"""The ports the lake's domain needs; its `adapters` package implements them with boto3."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class VersionedObject:
    data: bytes
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class ConcurrentUpdate(Exception):
    """A conditional write lost a race: the object changed (or appeared) since it was read."""


class LakeStore(Protocol):
    """One bucket of the lake."""

    bucket: str

    def head(self, key: str) -> ObjectInfo | None: ...

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object."""
        ...

    def get(self, key: str) -> VersionedObject | None: ...

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
        """Write the object; with ``if_match``/``if_absent`` raise :class:`ConcurrentUpdate` on a race."""
        ...

    def upload_stream(
        self, key: str, chunks: Iterable[bytes], metadata: Mapping[str, str] | None = None
    ) -> int:
        """Write the concatenation of ``chunks`` (multipart for large objects); returns the size."""
        ...

    def stream(self, key: str, chunk_bytes: int = 8 * 1024 * 1024) -> Iterable[bytes]: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: Sequence[str]) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...
