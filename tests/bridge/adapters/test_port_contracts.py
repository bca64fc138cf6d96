"""The bridge's ports' contracts, run against the in-memory fakes and the boto3 adapters on moto.

Each test is one behaviour the bridge's domain relies on (exactly-once answers, an ended job stays
ended, the presigned upload...), run once per implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from meterflow.bridge.adapters.jobs_table import DynamoDbBridgeJobs
from meterflow.bridge.adapters.uploads import S3ObjectHead, S3UploadPresigner
from meterflow.bridge.domain.jobs import BridgeJob, BridgeJobStatus, token_digest
from meterflow.bridge.ports import JobRepository, ObjectHead, UploadPresigner
from meterflow.core.errors import Conflict
from tests.support.memory_bridge import FakeHead, FakePresigner, MemoryJobs
from tests.support.moto_inprocess import REGION, moto_stack

CREATED = datetime(2026, 12, 2, 6, 0, 0, 123456)
LATER = CREATED + timedelta(minutes=5)
JOB_ID = "5c0a7d42-8a43-4f4e-9d55-2f1f0e6b1c9a"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
QUEUED, DISPATCHED, RUNNING = BridgeJobStatus.QUEUED, BridgeJobStatus.DISPATCHED, BridgeJobStatus.RUNNING
UPLOADED, SUCCEEDED = BridgeJobStatus.UPLOADED, BridgeJobStatus.SUCCEEDED
FAILED, CANCELLED = BridgeJobStatus.FAILED, BridgeJobStatus.CANCELLED


def new_job(job_id: str = JOB_ID, *, windowed: bool = True) -> BridgeJob:
    return BridgeJob(
        job_id=job_id,
        tenant="north",
        worker="plant-1",
        job_type="historian.export",
        status=QUEUED,
        created_at=CREATED,
        updated_at=CREATED,
        window_start=datetime(2023, 3, 1) if windowed else None,
        window_end=datetime(2023, 3, 2) if windowed else None,
    )


# ---------------------------------------------------------------------------------- job repository
@pytest.fixture(params=["memory", "dynamodb"])
def jobs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobRepository]:
    """GIVEN the bridge-jobs table: the fake, or DynamoDB (moto) created as the stack creates it."""
    if request.param == "memory":
        yield MemoryJobs()
        return
    with moto_stack(monkeypatch, tables=["bridge_jobs"]) as aws:
        yield DynamoDbBridgeJobs(aws.clients.dynamodb, aws.table("bridge_jobs"))


@pytest.fixture
def job(jobs: JobRepository) -> BridgeJob:
    """GIVEN a backfill job just started (queued)."""
    created = new_job()
    jobs.create(created)
    return created


def current(jobs: JobRepository, job_id: str = JOB_ID) -> BridgeJob:
    found = jobs.get(job_id)
    assert found is not None
    return found


def end_as(jobs: JobRepository, status: BridgeJobStatus) -> None:
    """Take the job to ``status`` the way the workflow does."""
    if status in (DISPATCHED, RUNNING):
        jobs.dispatched(JOB_ID, token_digest("t-0"), 0, LATER)
    if status is RUNNING:
        jobs.progressed(JOB_ID, 0.5, 10, LATER)
    if status in (UPLOADED, SUCCEEDED, FAILED, CANCELLED):
        jobs.ended(JOB_ID, status, LATER, failure_reason="ended" if status in (FAILED, CANCELLED) else None)


@pytest.mark.parametrize("windowed", [True, False], ids=["window", "no-window"])
def test_a_created_job_reads_back_as_created(jobs: JobRepository, windowed: bool) -> None:
    created = new_job(windowed=windowed)
    jobs.create(created)
    assert jobs.get(JOB_ID) == created


def test_a_job_is_created_as_one_that_has_not_run(jobs: JobRepository) -> None:
    # WHEN a job is created with attempt fields already set THEN the table holds it as never run
    jobs.create(
        replace(new_job(), attempts=3, attempt=2, token_sha256="t", fraction=0.5, rows=9, output={"a": 1})
    )
    assert jobs.get(JOB_ID) == new_job()


def test_creating_an_existing_job_id_conflicts_and_keeps_the_first(
    jobs: JobRepository, job: BridgeJob
) -> None:
    with pytest.raises(Conflict):
        jobs.create(new_job(windowed=False))
    assert jobs.get(JOB_ID) == job


def test_an_unknown_job_is_none(jobs: JobRepository) -> None:
    assert jobs.get(UNKNOWN_ID) is None


def test_a_dispatched_attempt_becomes_the_only_one_accepted(jobs: JobRepository, job: BridgeJob) -> None:
    # WHEN the first attempt is sent, progresses, and a retry (attempt 1) is sent
    jobs.dispatched(JOB_ID, token_digest("t-0"), 0, LATER)
    jobs.progressed(JOB_ID, 0.5, 10, LATER)
    jobs.dispatched(JOB_ID, token_digest("t-1"), 1, LATER + timedelta(seconds=1))
    # THEN the job names the retry's token and attempt, counts two attempts, and progress restarts
    found = current(jobs)
    assert (found.status, found.token_sha256, found.attempt, found.attempts) == (
        DISPATCHED,
        token_digest("t-1"),
        1,
        2,
    )
    assert (found.fraction, found.rows, found.updated_at) == (0.0, 0, LATER + timedelta(seconds=1))


def test_progress_marks_the_job_running(jobs: JobRepository, job: BridgeJob) -> None:
    jobs.dispatched(JOB_ID, token_digest("t-0"), 0, LATER)
    jobs.progressed(JOB_ID, 0.25, 1200, LATER + timedelta(seconds=30))
    found = current(jobs)
    assert (found.status, found.fraction, found.rows, found.updated_at) == (
        RUNNING,
        0.25,
        1200,
        LATER + timedelta(seconds=30),
    )


def test_a_failed_attempt_records_why_and_leaves_the_status_to_the_workflow(
    jobs: JobRepository, job: BridgeJob
) -> None:
    jobs.dispatched(JOB_ID, token_digest("t-0"), 0, LATER)
    jobs.attempt_failed(JOB_ID, "WorkerError: " + "x" * 3000, LATER)
    found = current(jobs)
    assert found.status is DISPATCHED
    assert found.failure_reason == ("WorkerError: " + "x" * 3000)[:2048]


@pytest.mark.parametrize("status", [UPLOADED, SUCCEEDED, FAILED, CANCELLED])
@pytest.mark.parametrize(
    "late_update",
    [
        lambda jobs: jobs.dispatched(JOB_ID, token_digest("t-9"), 9, LATER + timedelta(hours=1)),
        lambda jobs: jobs.progressed(JOB_ID, 0.9, 99, LATER + timedelta(hours=1)),
        lambda jobs: jobs.attempt_failed(JOB_ID, "late", LATER + timedelta(hours=1)),
    ],
    ids=["dispatched", "progressed", "attempt_failed"],
)
def test_an_ended_job_ignores_late_attempt_updates(
    jobs: JobRepository, job: BridgeJob, status: BridgeJobStatus, late_update: Callable[[JobRepository], None]
) -> None:
    # GIVEN a job that uploaded its file, or ended
    end_as(jobs, status)
    before = current(jobs)
    # WHEN a late message of an attempt updates it THEN nothing changes
    late_update(jobs)
    assert current(jobs) == before


def test_ending_a_job_records_its_status_output_and_reason(jobs: JobRepository, job: BridgeJob) -> None:
    jobs.dispatched(JOB_ID, token_digest("t-0"), 0, LATER)
    output = {"rows": 3, "bytes": 120, "files": ["a.csv"], "meta": {"site": "north"}}
    jobs.ended(JOB_ID, UPLOADED, LATER, output=output)
    jobs.ended(JOB_ID, SUCCEEDED, LATER + timedelta(seconds=1))
    found = current(jobs)
    # THEN the output stays as the upload reported it, and the verified job succeeded
    assert (found.status, found.output, found.updated_at) == (SUCCEEDED, output, LATER + timedelta(seconds=1))


@pytest.mark.parametrize("ended", [SUCCEEDED, FAILED, CANCELLED])
def test_an_ended_job_stays_ended(jobs: JobRepository, job: BridgeJob, ended: BridgeJobStatus) -> None:
    # GIVEN a job that succeeded, failed or was cancelled
    end_as(jobs, ended)
    before = current(jobs)
    # WHEN something else tries to end it (a cancel racing the result, a late verify)
    jobs.ended(
        JOB_ID,
        CANCELLED if ended is not CANCELLED else SUCCEEDED,
        LATER,
        output={"late": True},
        failure_reason="late",
    )
    # THEN it keeps its first end
    assert current(jobs) == before


def test_a_failure_reason_is_kept_to_2048_characters(jobs: JobRepository, job: BridgeJob) -> None:
    jobs.ended(JOB_ID, FAILED, LATER, failure_reason="y" * 5000)
    assert current(jobs).failure_reason == "y" * 2048


def test_ending_an_unknown_job_creates_nothing(jobs: JobRepository) -> None:
    jobs.ended(UNKNOWN_ID, CANCELLED, LATER, failure_reason="cancelled by request")
    jobs.dispatched(UNKNOWN_ID, token_digest("t-0"), 0, LATER)
    jobs.progressed(UNKNOWN_ID, 0.5, 1, LATER)
    jobs.attempt_failed(UNKNOWN_ID, "late", LATER)
    assert jobs.get(UNKNOWN_ID) is None


def test_an_attempt_is_answered_exactly_once(jobs: JobRepository, job: BridgeJob) -> None:
    # WHEN the result of attempt 0 arrives twice (MQTT QoS 1) THEN only the first may answer the Task
    assert jobs.claim_answer(JOB_ID, 0) is True
    assert jobs.claim_answer(JOB_ID, 0) is False


def test_a_released_answer_may_be_claimed_again(jobs: JobRepository, job: BridgeJob) -> None:
    # GIVEN attempt 1 claimed, but Step Functions did not take its answer
    assert jobs.claim_answer(JOB_ID, 1) is True
    # WHEN the claim is released
    jobs.release_answer(JOB_ID, 1)
    # THEN the redelivered result may claim it, once; and releasing an attempt not claimed last
    # (here 0) leaves the claim of 1 in place
    assert jobs.claim_answer(JOB_ID, 1) is True
    jobs.release_answer(JOB_ID, 0)
    assert jobs.claim_answer(JOB_ID, 1) is False


def test_a_retry_may_answer_after_its_predecessor(jobs: JobRepository, job: BridgeJob) -> None:
    # GIVEN attempt 0 answered WHEN the retry (attempt 1) answers THEN it may, once
    assert jobs.claim_answer(JOB_ID, 0) is True
    assert jobs.claim_answer(JOB_ID, 1) is True
    assert jobs.claim_answer(JOB_ID, 1) is False


def test_an_attempt_may_not_answer_after_a_later_one(jobs: JobRepository, job: BridgeJob) -> None:
    # GIVEN attempt 0 timed out unanswered and its retry (attempt 1) answered
    assert jobs.claim_answer(JOB_ID, 1) is True
    # WHEN attempt 0's result straggles in THEN it may not answer: the job moved past it
    assert jobs.claim_answer(JOB_ID, 0) is False


def test_claiming_an_answer_of_an_unknown_job_is_refused_and_creates_nothing(jobs: JobRepository) -> None:
    assert jobs.claim_answer(UNKNOWN_ID, 0) is False
    assert jobs.get(UNKNOWN_ID) is None


# -------------------------------------------------------------------------- inbound bucket: head
@dataclass(frozen=True)
class Inbound:
    head: ObjectHead
    put: Callable[[str, bytes], None]  # an object arrives (the site's upload)


@pytest.fixture(params=["memory", "s3"])
def inbound(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbound]:
    """GIVEN the inbound bucket: the fake, or S3 (moto) created as the stack creates it."""
    if request.param == "memory":
        fake = FakeHead({})
        yield Inbound(fake, lambda key, data: fake.sizes.__setitem__(key, len(data)))
        return
    with moto_stack(monkeypatch, buckets=["inbound"]) as aws:
        name = aws.bucket("inbound")
        yield Inbound(
            S3ObjectHead(aws.clients.s3, name),
            lambda key, data: aws.clients.s3.put_object(Bucket=name, Key=key, Body=data),
        )


@pytest.mark.parametrize("data", [b"meter,time,kw\n" * 100, b""], ids=["csv", "empty"])
def test_an_uploaded_object_has_its_size(inbound: Inbound, data: bytes) -> None:
    inbound.put("uncompressed/historian/north/job.csv", data)
    assert inbound.head.size_of("uncompressed/historian/north/job.csv") == len(data)


def test_an_object_never_uploaded_has_no_size(inbound: Inbound) -> None:
    assert inbound.head.size_of("uncompressed/historian/north/none.csv") is None


# --------------------------------------------------------------------- inbound bucket: presigning
KEY = "uncompressed/historian/north/job 1.csv"
METADATA = {
    "file-id": "historian-north-job-1",
    "file-format": "hes_wide",
    "reading-source": "historian:north",
}


@pytest.fixture(params=["memory", "s3"])
def presigner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[UploadPresigner]:
    """GIVEN the presigner: the fake, or S3 (moto) with the SigV4 client the bridge's wiring builds."""
    if request.param == "memory":
        yield FakePresigner()
        return
    with moto_stack(monkeypatch, buckets=["inbound"]) as aws:
        client = boto3.session.Session().client(
            "s3", region_name=REGION, config=Config(signature_version="s3v4")
        )
        yield S3UploadPresigner(client, aws.bucket("inbound"))


def test_the_upload_url_names_the_object_and_expires_with_the_lifetime(presigner: UploadPresigner) -> None:
    url, _headers = presigner.presign_put(KEY, METADATA, timedelta(hours=12))
    parts = urlsplit(url)
    assert parts.path == "/" + quote(KEY)
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["43200"]


def test_the_upload_headers_carry_the_metadata_and_content_type(presigner: UploadPresigner) -> None:
    _url, headers = presigner.presign_put(KEY, METADATA, timedelta(hours=12))
    assert headers == {
        "x-amz-meta-file-id": "historian-north-job-1",
        "x-amz-meta-file-format": "hes_wide",
        "x-amz-meta-reading-source": "historian:north",
        "Content-Type": "text/csv",
    }


def test_a_site_put_with_the_url_and_headers_lands_the_object_with_its_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The S3 adapter alone: the fake's URL points nowhere. moto checks no signature, so the signed
    headers are compared with the headers handed out: in AWS any difference is a 403."""
    with moto_stack(monkeypatch, buckets=["inbound"]) as aws:
        client = boto3.session.Session().client(
            "s3", region_name=REGION, config=Config(signature_version="s3v4")
        )
        url, headers = S3UploadPresigner(client, aws.bucket("inbound")).presign_put(
            KEY, METADATA, timedelta(hours=12)
        )
        signed = parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert sorted(signed) == sorted([*(name.lower() for name in headers), "host"])
        # WHEN the site PUTs its file with exactly those headers
        answer = requests.put(url, data=b"meter,time,kw\n", headers=headers, timeout=10)
        # THEN the object is there, with the metadata the lake's ingestion reads
        assert answer.status_code == 200
        head = aws.clients.s3.head_object(Bucket=aws.bucket("inbound"), Key=KEY)
        assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (14, "text/csv", METADATA)
        assert S3ObjectHead(aws.clients.s3, aws.bucket("inbound")).size_of(KEY) == 14
