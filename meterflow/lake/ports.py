"""The ports the lake's domain needs; its `adapters` package implements them (boto3, HTTP, SFTP, DuckDB)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from meterflow.core.errors import DomainError

if TYPE_CHECKING:  # the domain modules import these ports: only the type checker follows these imports
    import pyarrow as pa

    from meterflow.lake.domain.integrations import Integration, WindowBy
    from meterflow.lake.domain.queries import QueryResult


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


# ------------------------------------------------------------------------------------- queries
class QueryEngine(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, sql: str) -> QueryResult: ...


# -------------------------------------------------------------------------------- integrations
class IntegrationRepository(Protocol):
    def get(self, integration_id: str) -> Integration | None: ...

    def put(self, integration: Integration) -> None: ...

    def all(self) -> list[Integration]: ...

    def reset(self, integration_id: str) -> bool:
        """Set a failed integration back to idle (keeping its window); False if it was not failed."""
        ...


class WorkflowStarter(Protocol):
    def start(self, execution_name: str, workflow_input: str) -> bool: ...


class HesApi(Protocol):
    def request_file(self, base_url: str, start_date: str, end_date: str, window_by: WindowBy) -> str:
        """POST /readings/file; returns the request id."""
        ...

    def file_status(self, base_url: str, request_id: str) -> dict[str, Any]:
        """GET /readings/file?request_id=: the seed's status body."""
        ...


class SftpSource(Protocol):
    def download(self, integration: Integration, remote_path: str) -> Iterator[bytes]:
        """The remote file's bytes, after the server's host key matched ``sftp_host_key``."""
        ...


# ------------------------------------------------------------------------------------- weather
class WeatherUnavailable(DomainError):
    """The weather provider failed or answered with something unusable; the dataflow may retry."""

    status_code = 502
    code = "WeatherUnavailable"


class WeatherProvider(Protocol):
    """A source of hourly outdoor temperature for the service territory."""

    @property
    def source(self) -> str:
        """The ``source`` column's value: which provider observed (or simulated) the weather."""
        ...

    def hourly(self, start: datetime, end: datetime) -> pa.Table:
        """Observations at each hour in [start, end) (naive UTC), as WEATHER_SCHEMA, in time order.

        Raises :class:`InvalidInput` for a malformed window (see
        :func:`meterflow.lake.domain.weather_source.validate_window`) and :class:`WeatherUnavailable`
        when the provider cannot answer.
        """
        ...
