"""The worker's local journal (SQLite, WAL): which jobs it took, how they ended, what the cloud has.

QoS 1 delivers a job at least once, and the cloud may dispatch the same job again, so a job is
keyed by (job_id, SHA-256 of its task token):

* the same job id with the same token (a broker redelivery, or the dispatcher publishing twice)
  is never run twice: while it runs the duplicate is ignored; once it finished the stored result
  is sent again, which the cloud's token handler treats idempotently;
* the same job id with a new token is a new attempt (Step Functions retried the Task after a
  heartbeat timeout) and runs again.

A result stays unacknowledged until the broker's PUBACK for it arrives; unacknowledged results
are sent again when the worker starts. Jobs a crash left ``received`` or ``running`` are listed by
:meth:`JobJournal.interrupted` so the worker can report them failed: their token may still be
awaited, and the cloud's retry sends the job again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    task_token TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    job_type TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'running', 'finished')),
    result BLOB,
    result_acknowledged INTEGER NOT NULL DEFAULT 0 CHECK (result_acknowledged IN (0, 1)),
    received_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (job_id, token_sha256),
    CHECK ((state = 'finished') = (result IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS jobs_unacknowledged ON jobs (state, result_acknowledged);
"""
_COLUMNS = (
    "job_id, token_sha256, task_token, attempt, job_type, state, result, result_acknowledged, received_at,"
    " finished_at"
)


class JobState(StrEnum):
    RECEIVED = "received"
    RUNNING = "running"
    FINISHED = "finished"


class Admission(StrEnum):
    """What to do with a job message, decided by the journal."""

    RUN = "run"  # first time this (job_id, token) is seen
    RESEND = "resend"  # it finished before: send its stored result again
    IGNORE = "ignore"  # it is being worked on right now


@dataclass(frozen=True)
class JournalEntry:
    job_id: str
    token_sha256: str  # names the run: the token's digest, and the attempt's when it is not the first
    task_token: str
    attempt: int
    job_type: str
    state: JobState
    result: bytes | None
    result_acknowledged: bool
    received_at: datetime
    finished_at: datetime | None


def token_digest(task_token: str, attempt: int = 0) -> str:
    """The journal's key for one run: tokens are long, and the digest is what logs may show.

    Step Functions may keep a token across a Task's retries, so a retry's attempt number is part of
    the key: the retry runs again instead of finding the first try's result.
    """
    text = task_token if attempt == 0 else f"{task_token}\n{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()


class JobJournal:
    """Thread-safe: the MQTT network thread and every job thread share one connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit mode: every write below is its own transaction or an explicit BEGIN IMMEDIATE.
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        # A result must be on disk before it is published: FULL survives power loss, not just a crash.
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute("PRAGMA busy_timeout=5000")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def admit(
        self, job_id: str, task_token: str, job_type: str, attempt: int = 0
    ) -> tuple[Admission, JournalEntry]:
        """Record a job message and say whether to run it, re-send its result, or ignore it."""
        digest = token_digest(task_token, attempt)
        with self._transaction() as connection:
            existing = _fetch_one(connection, job_id, digest)
            if existing is not None:
                admission = Admission.RESEND if existing.state is JobState.FINISHED else Admission.IGNORE
                return admission, existing
            connection.execute(
                "INSERT INTO jobs (job_id, token_sha256, task_token, attempt, job_type, state, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, digest, task_token, attempt, job_type, JobState.RECEIVED.value, _now()),
            )
            admitted = _fetch_one(connection, job_id, digest)
        assert admitted is not None
        return Admission.RUN, admitted

    def mark_running(self, job_id: str, token_sha256: str) -> None:
        self._update(
            "UPDATE jobs SET state = ? WHERE job_id = ? AND token_sha256 = ? AND state = ?",
            (JobState.RUNNING.value, job_id, token_sha256, JobState.RECEIVED.value),
        )

    def finish(self, job_id: str, token_sha256: str, result: bytes) -> None:
        """Store the encoded result message; it counts as unacknowledged until :meth:`acknowledge`."""
        self._update(
            "UPDATE jobs SET state = ?, result = ?, result_acknowledged = 0, finished_at = ?"
            " WHERE job_id = ? AND token_sha256 = ? AND state != ?",
            (JobState.FINISHED.value, result, _now(), job_id, token_sha256, JobState.FINISHED.value),
        )

    def acknowledge(self, job_id: str, token_sha256: str) -> None:
        """The broker acknowledged (PUBACK) the result: it need not be sent again at start-up."""
        self._update(
            "UPDATE jobs SET result_acknowledged = 1 WHERE job_id = ? AND token_sha256 = ? AND state = ?",
            (job_id, token_sha256, JobState.FINISHED.value),
        )

    def unacknowledged_results(self) -> list[JournalEntry]:
        return self._select(
            "WHERE state = ? AND result_acknowledged = 0 ORDER BY finished_at", (JobState.FINISHED.value,)
        )

    def interrupted(self) -> list[JournalEntry]:
        """Jobs received or running but not finished: at start-up, the ones a crash cut short."""
        return self._select(
            "WHERE state IN (?, ?) ORDER BY received_at", (JobState.RECEIVED.value, JobState.RUNNING.value)
        )

    def entries(self, job_id: str) -> list[JournalEntry]:
        """Every attempt (task token) of one job, oldest first."""
        return self._select("WHERE job_id = ? ORDER BY received_at", (job_id,))

    def prune(self, older_than: timedelta) -> int:
        """Forget acknowledged jobs finished before ``older_than`` ago; returns how many."""
        cutoff = (datetime.now(UTC) - older_than).isoformat()
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM jobs WHERE state = ? AND result_acknowledged = 1 AND finished_at < ?",
                (JobState.FINISHED.value, cutoff),
            )
            return cursor.rowcount

    def _update(self, sql: str, parameters: tuple[object, ...]) -> None:
        with self._transaction() as connection:
            connection.execute(sql, parameters)

    def _select(self, where: str, parameters: tuple[object, ...]) -> list[JournalEntry]:
        with self._lock:
            rows = self._connection.execute(f"SELECT {_COLUMNS} FROM jobs {where}", parameters).fetchall()  # noqa: S608 (fixed clauses)
        return [_entry(row) for row in rows]


def _fetch_one(connection: sqlite3.Connection, job_id: str, token_sha256: str) -> JournalEntry | None:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ? AND token_sha256 = ?",  # noqa: S608 (fixed columns)
        (job_id, token_sha256),
    ).fetchone()
    return None if row is None else _entry(row)


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    job_id, digest, token, attempt, job_type, state, result, acknowledged, received_at, finished_at = row
    return JournalEntry(
        job_id=str(job_id),
        token_sha256=str(digest),
        task_token=str(token),
        attempt=int(attempt),
        job_type=str(job_type),
        state=JobState(str(state)),
        result=None if result is None else bytes(result),
        result_acknowledged=bool(acknowledged),
        received_at=datetime.fromisoformat(str(received_at)),
        finished_at=None if finished_at is None else datetime.fromisoformat(str(finished_at)),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
