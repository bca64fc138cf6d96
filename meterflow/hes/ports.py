"""The ports the domain needs; its `adapters` package implements them with boto3."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meterflow.hes.domain.export import ExportStatus, FileRequest


class FileRequestRepository(Protocol):
    def create(self, request: FileRequest) -> None: ...

    def get(self, request_id: str) -> FileRequest | None: ...

    def advance(self, request_id: str, status: ExportStatus, allowed_from: Sequence[ExportStatus]) -> bool:
        """Set ``status`` if the current status is one of ``allowed_from``; False if it was not."""
        ...

    def fail(self, request_id: str, reason: str) -> None: ...


class MessageQueue(Protocol):
    def send(self, body: str) -> None: ...


class ExportWorkflow(Protocol):
    def start(self, execution_name: str, workflow_input: str) -> bool:
        """Start an execution; False if one with this name already exists (a redelivery)."""
        ...


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    record_count: int | None


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, record_count: int) -> None: ...

    def head(self, key: str) -> StoredObject | None: ...

    def compose(
        self, target_key: str, part_groups: Sequence[Sequence[StoredObject]], record_count: int
    ) -> int:
        """Write ``target_key`` as the ordered concatenation of the groups (one upload part each).

        Returns the size in bytes of the composed object.
        """
        ...

    def delete_prefix(self, prefix: str) -> None: ...
