"""In-memory ports of the on-premises bridge, same contracts as meterflow.bridge.adapters.aws."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from meterflow.bridge.domain.jobs import FINISHED, BridgeJob, BridgeJobStatus, PublishFailed
from meterflow.core.errors import Conflict, StaleTaskToken


class MemoryJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, BridgeJob] = {}
        self.answered: dict[str, set[int]] = {}

    def create(self, job: BridgeJob) -> None:
        if job.job_id in self.jobs:
            raise Conflict(f"job {job.job_id} exists")
        self.jobs[job.job_id] = job

    def get(self, job_id: str) -> BridgeJob | None:
        return self.jobs.get(job_id)

    def _open(self, job_id: str) -> BridgeJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.status not in FINISHED | {BridgeJobStatus.UPLOADED} else None

    def dispatched(self, job_id: str, token_sha256: str, attempt: int, at: datetime) -> None:
        if (job := self._open(job_id)) is not None:
            self.jobs[job_id] = replace(
                job,
                status=BridgeJobStatus.DISPATCHED,
                token_sha256=token_sha256,
                attempt=attempt,
                attempts=job.attempts + 1,
                fraction=0.0,
                rows=0,
                updated_at=at,
            )

    def progressed(self, job_id: str, fraction: float, rows: int, at: datetime) -> None:
        if (job := self._open(job_id)) is not None:
            self.jobs[job_id] = replace(
                job, status=BridgeJobStatus.RUNNING, fraction=fraction, rows=rows, updated_at=at
            )

    def claim_answer(self, job_id: str, attempt: int) -> bool:
        if attempt in self.answered.setdefault(job_id, set()):
            return False
        self.answered[job_id].add(attempt)
        return True

    def attempt_failed(self, job_id: str, reason: str, at: datetime) -> None:
        if (job := self._open(job_id)) is not None:
            self.jobs[job_id] = replace(job, failure_reason=reason, updated_at=at)

    def ended(
        self,
        job_id: str,
        status: BridgeJobStatus,
        at: datetime,
        output: Mapping[str, Any] | None = None,
        failure_reason: str | None = None,
    ) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status in FINISHED:
            return
        self.jobs[job_id] = replace(
            job,
            status=status,
            updated_at=at,
            output=dict(output) if output is not None else job.output,
            failure_reason=failure_reason if failure_reason is not None else job.failure_reason,
        )


class RecordingPublisher:
    def __init__(self, fail_with: str | None = None) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.fail_with = fail_with

    def publish(self, topic_name: str, payload: bytes) -> None:
        if self.fail_with is not None:
            raise PublishFailed(self.fail_with)
        self.published.append((topic_name, payload))


@dataclass
class RecordingCallbacks:
    """Every token's answers; tokens in ``stale`` answer like a task nobody waits for."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)

    def __call__(self, task_token: str) -> TokenCallbacks:
        return TokenCallbacks(self, task_token)


@dataclass
class TokenCallbacks:
    record: RecordingCallbacks
    token: str

    def _answer(self, kind: str, value: Any) -> None:
        if self.token in self.record.stale:
            raise StaleTaskToken("TaskTimedOut")
        self.record.calls.append((kind, self.token, value))

    def succeed(self, output: dict[str, Any]) -> None:
        self._answer("success", output)

    def fail(self, error: str, cause: str) -> None:
        self._answer("failure", (error, cause))

    def heartbeat(self) -> None:
        self._answer("heartbeat", None)


class RecordingWorkflow:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.stopped: list[tuple[str, str, str]] = []

    def start(self, execution_name: str, workflow_input: str) -> bool:
        self.started.append((execution_name, workflow_input))
        return True

    def stop(self, execution_name: str, error: str, cause: str) -> None:
        self.stopped.append((execution_name, error, cause))


class FakePresigner:
    def presign_put(
        self, key: str, metadata: Mapping[str, str], lifetime: timedelta
    ) -> tuple[str, dict[str, str]]:
        return f"https://inbound.example/{key}?expires={int(lifetime.total_seconds())}", {
            f"x-amz-meta-{name}": value for name, value in metadata.items()
        }


class FakeHead:
    def __init__(self, sizes: Mapping[str, int]) -> None:
        self.sizes = dict(sizes)

    def size_of(self, key: str) -> int | None:
        return self.sizes.get(key)
