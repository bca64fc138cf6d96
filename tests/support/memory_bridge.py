"""In-memory ports of the on-premises bridge, behaving as meterflow.bridge.adapters do against AWS.

``tests/bridge/adapters/test_port_contracts.py`` runs one suite against these fakes and against the
adapters on moto (and ``tests/aws/adapters/test_messaging_contract.py`` the task-token callbacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from meterflow.bridge.domain.jobs import FINISHED, BridgeJob, BridgeJobStatus
from meterflow.bridge.ports import PublishFailed
from meterflow.core.errors import Conflict, StaleTaskToken
from tests.support.memory_hes import MemoryWorkflow

REASON_CHARS = 2048  # what the bridge-jobs table keeps of a failure reason


class MemoryJobs:
    """The bridge-jobs table: one item per job; updates of an ended job change nothing."""

    def __init__(self) -> None:
        self.jobs: dict[str, BridgeJob] = {}
        self.answered: dict[str, int] = {}  # job id -> the latest attempt answered

    def create(self, job: BridgeJob) -> None:
        if job.job_id in self.jobs:
            raise Conflict(f"job {job.job_id} exists", field="job_id")
        # what create writes: a job that has not run yet, its window only when it has both ends
        windowed = job.window_start is not None and job.window_end is not None
        self.jobs[job.job_id] = replace(
            job,
            window_start=job.window_start if windowed else None,
            window_end=job.window_end if windowed else None,
            attempts=0,
            attempt=0,
            token_sha256=None,
            fraction=0.0,
            rows=0,
            output={},
            failure_reason=None,
        )

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
        """Attempts are answered in order: once one is, it and every earlier one are claimed."""
        if job_id not in self.jobs or self.answered.get(job_id, -1) >= attempt:
            return False
        self.answered[job_id] = attempt
        return True

    def release_answer(self, job_id: str, attempt: int) -> None:
        if self.answered.get(job_id) == attempt:
            self.answered[job_id] = attempt - 1

    def attempt_failed(self, job_id: str, reason: str, at: datetime) -> None:
        if (job := self._open(job_id)) is not None:
            self.jobs[job_id] = replace(job, failure_reason=reason[:REASON_CHARS], updated_at=at)

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
            # kept as JSON text in the table
            output=json.loads(json.dumps(dict(output))) if output is not None else job.output,
            failure_reason=job.failure_reason if failure_reason is None else failure_reason[:REASON_CHARS],
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
    """Every token's answers; tokens in ``stale`` answer like a task nobody waits for, and so does a
    token once it has been answered (its task no longer waits)."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)

    def __call__(self, task_token: str) -> TokenCallbacks:
        return TokenCallbacks(self, task_token)


@dataclass
class TokenCallbacks:
    record: RecordingCallbacks
    token: str

    def _answer(self, kind: str, value: Any) -> None:
        if self.token in self.record.stale:
            raise StaleTaskToken("TaskTimedOut")
        if self.token in self.record.answered:
            raise StaleTaskToken("InvalidToken")
        self.record.calls.append((kind, self.token, value))
        if kind != "heartbeat":
            self.record.answered.add(self.token)

    def succeed(self, output: dict[str, Any]) -> None:
        self._answer("success", json.loads(json.dumps(output)))

    def fail(self, error: str, cause: str) -> None:
        # Step Functions limits error to 256 and cause to 32,768 characters: the adapter cuts them
        self._answer("failure", (error[:256], cause[:32_000]))

    def heartbeat(self) -> None:
        self._answer("heartbeat", None)


class RecordingWorkflow(MemoryWorkflow):
    """The historian-backfill state machine's executions (Step Functions' rules: see MemoryWorkflow)."""


class FakePresigner:
    """URLs shaped as S3's (the key in the path, X-Amz-Expires), with the headers the PUT must carry."""

    def presign_put(
        self, key: str, metadata: Mapping[str, str], lifetime: timedelta
    ) -> tuple[str, dict[str, str]]:
        url = f"https://inbound.example/{quote(key)}?X-Amz-Expires={int(lifetime.total_seconds())}"
        headers = {f"x-amz-meta-{name}": value for name, value in metadata.items()}
        headers["Content-Type"] = "text/csv"
        return url, headers


class FakeHead:
    def __init__(self, sizes: Mapping[str, int]) -> None:
        self.sizes = dict(sizes)

    def size_of(self, key: str) -> int | None:
        return self.sizes.get(key)
