"""The worker's SQLite journal: a redelivered job runs once, a new token runs again, nothing is lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from onprem_worker.journal import Admission, JobJournal, JobState, token_digest


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[JobJournal]:
    opened = JobJournal(journal_path)
    yield opened
    opened.close()


def run_to_end(journal: JobJournal, job_id: str, token: str, result: bytes = b"result") -> str:
    admission, entry = journal.admit(job_id, token, "noop")
    assert admission is Admission.RUN
    journal.mark_running(job_id, entry.token_sha256)
    journal.finish(job_id, entry.token_sha256, result)
    return entry.token_sha256


def test_a_new_job_is_run_and_recorded_as_received(journal: JobJournal) -> None:
    # GIVEN an empty journal WHEN a job is admitted THEN it is to be run and recorded, keyed by token hash
    admission, entry = journal.admit("job-1", "token-1", "noop")
    assert admission is Admission.RUN
    assert entry.state is JobState.RECEIVED
    assert entry.token_sha256 == token_digest("token-1") != "token-1"


def test_a_duplicate_of_a_running_job_is_ignored(journal: JobJournal) -> None:
    # GIVEN a job that is running WHEN the same job id and token arrive again (QoS 1 redelivery)
    _, entry = journal.admit("job-1", "token-1", "noop")
    journal.mark_running("job-1", entry.token_sha256)
    admission, again = journal.admit("job-1", "token-1", "noop")
    # THEN it is ignored: one run
    assert admission is Admission.IGNORE
    assert again.state is JobState.RUNNING
    assert len(journal.entries("job-1")) == 1


@pytest.mark.parametrize("acknowledged", [False, True])
def test_a_duplicate_of_a_finished_job_resends_the_stored_result(
    journal: JobJournal, acknowledged: bool
) -> None:
    # GIVEN a finished job, its result acknowledged or not
    digest = run_to_end(journal, "job-1", "token-1", b'{"status": "succeeded"}')
    if acknowledged:
        journal.acknowledge("job-1", digest)
    # WHEN the same job arrives again THEN its stored result is to be sent again, not the job run
    admission, entry = journal.admit("job-1", "token-1", "noop")
    assert admission is Admission.RESEND
    assert entry.result == b'{"status": "succeeded"}'
    assert entry.result_acknowledged is acknowledged


def test_the_same_job_with_a_new_token_is_a_new_attempt(journal: JobJournal) -> None:
    # GIVEN a job finished under one token WHEN Step Functions retries it with a new token
    run_to_end(journal, "job-1", "token-1")
    admission, entry = journal.admit("job-1", "token-2", "noop")
    # THEN the retry runs, and the journal keeps both attempts
    assert admission is Admission.RUN
    assert [attempt.token_sha256 for attempt in journal.entries("job-1")] == [
        token_digest("token-1"),
        token_digest("token-2"),
    ]
    assert entry.state is JobState.RECEIVED


def test_unacknowledged_results_survive_a_restart_until_acknowledged(journal_path: Path) -> None:
    # GIVEN two finished jobs, one acknowledged, and the worker gone
    first = JobJournal(journal_path)
    run_to_end(first, "job-1", "token-1", b"one")
    acknowledged = run_to_end(first, "job-2", "token-2", b"two")
    first.acknowledge("job-2", acknowledged)
    first.close()
    # WHEN the journal is opened again THEN only the unacknowledged result is to be re-sent
    second = JobJournal(journal_path)
    pending = second.unacknowledged_results()
    assert [(entry.job_id, entry.result) for entry in pending] == [("job-1", b"one")]
    # AND once acknowledged, nothing is left to re-send
    second.acknowledge("job-1", pending[0].token_sha256)
    assert second.unacknowledged_results() == []
    second.close()


def test_jobs_a_crash_cut_short_are_listed_with_their_token(journal_path: Path) -> None:
    # GIVEN a job running and one only received when the process died (the connection is dropped unclosed)
    crashed = JobJournal(journal_path)
    _, running = crashed.admit("job-1", "token-1", "historian.export")
    crashed.mark_running("job-1", running.token_sha256)
    crashed.admit("job-2", "token-2", "noop")
    run_to_end(crashed, "job-3", "token-3")
    # WHEN the journal is reopened THEN both unfinished jobs are listed, with the token to answer them
    reopened = JobJournal(journal_path)
    interrupted = reopened.interrupted()
    assert [(entry.job_id, entry.state, entry.task_token) for entry in interrupted] == [
        ("job-1", JobState.RUNNING, "token-1"),
        ("job-2", JobState.RECEIVED, "token-2"),
    ]
    reopened.close()
    crashed.close()


def test_a_result_is_stored_once(journal: JobJournal) -> None:
    # GIVEN a finished job WHEN something tries to finish it again THEN the first result stands
    digest = run_to_end(journal, "job-1", "token-1", b"first")
    journal.finish("job-1", digest, b"second")
    assert journal.entries("job-1")[0].result == b"first"


def test_pruning_forgets_only_old_acknowledged_jobs(journal: JobJournal) -> None:
    # GIVEN an acknowledged job, an unacknowledged one and a running one
    journal.acknowledge("job-1", run_to_end(journal, "job-1", "token-1"))
    run_to_end(journal, "job-2", "token-2")
    journal.admit("job-3", "token-3", "noop")
    # WHEN jobs finished before "now" are pruned THEN only the acknowledged one goes
    assert journal.prune(timedelta(seconds=-1)) == 1
    assert journal.entries("job-1") == []
    assert len(journal.entries("job-2")) == len(journal.entries("job-3")) == 1


def test_the_journal_is_a_wal_sqlite_database_another_process_can_read(
    journal: JobJournal, journal_path: Path
) -> None:
    # GIVEN a job in the journal WHEN another connection reads the file THEN it sees the job (WAL mode)
    run_to_end(journal, "job-1", "token-1")
    with sqlite3.connect(journal_path) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert reader.execute("SELECT job_id, state FROM jobs").fetchall() == [("job-1", "finished")]
