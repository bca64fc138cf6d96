"""The ports the bridge's domain needs; its `adapters` package implements them (boto3, MQTT)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the domain module imports these ports: only the type checker follows this import
    from meterflow.bridge.domain.jobs import BridgeJob, BridgeJobStatus


class JobRepository(Protocol):
    def create(self, job: BridgeJob) -> None:
        """Store a new job; Conflict if the id exists."""
        ...

    def get(self, job_id: str) -> BridgeJob | None: ...

    def dispatched(self, job_id: str, token_sha256: str, attempt: int, at: datetime) -> None:
        """A new attempt was sent: only its (token, attempt) is accepted from now on; progress restarts."""
        ...

    def progressed(self, job_id: str, fraction: float, rows: int, at: datetime) -> None: ...

    def claim_answer(self, job_id: str, attempt: int) -> bool:
        """Atomically mark ``attempt`` answered; False if it already was (a duplicate result)."""
        ...

    def release_answer(self, job_id: str, attempt: int) -> None:
        """Undo :meth:`claim_answer` of ``attempt`` (Step Functions did not take the answer), so
        that the redelivered result can answer it; a later claim is left alone."""
        ...

    def attempt_failed(self, job_id: str, reason: str, at: datetime) -> None:
        """An attempt ended in failure; the workflow decides whether the job retries or fails."""
        ...

    def ended(
        self,
        job_id: str,
        status: BridgeJobStatus,
        at: datetime,
        output: Mapping[str, Any] | None = None,
        failure_reason: str | None = None,
    ) -> None: ...


class TaskCallbacks(Protocol):
    """SendTaskSuccess/Failure/Heartbeat for one token; StaleTaskToken when nobody waits for it."""

    def succeed(self, output: dict[str, Any]) -> None: ...

    def fail(self, error: str, cause: str) -> None: ...

    def heartbeat(self) -> None: ...


CallbacksFor = Callable[[str], TaskCallbacks]


class PublishFailed(Exception):
    """The broker did not accept the message (not connected, refused, no acknowledgement in time)."""


class SitePublisher(Protocol):
    def publish(self, topic_name: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement; PublishFailed otherwise."""
        ...


class BackfillWorkflow(Protocol):
    def start(self, execution_name: str, workflow_input: str) -> bool: ...

    def stop(self, execution_name: str, error: str, cause: str) -> None: ...


class UploadPresigner(Protocol):
    def presign_put(
        self, key: str, metadata: Mapping[str, str], lifetime: timedelta
    ) -> tuple[str, dict[str, str]]:
        """(URL, headers the PUT must carry) for one object of the inbound bucket."""
        ...


class ObjectHead(Protocol):
    def size_of(self, key: str) -> int | None: ...
