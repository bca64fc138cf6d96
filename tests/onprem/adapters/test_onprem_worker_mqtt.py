"""The on-premises worker as a separate process on the local Mosquitto, driven by a paho client
playing the cloud: results by task token, failures as failures, at-most-once runs, cancellation,
heartbeats, and results that survive SIGKILL."""

from __future__ import annotations

import itertools
import json
import socket
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.localcloud.historian_seed import seed_historian
from onprem_worker.contracts import Channel, JobMessage, JobStatus, ResultMessage
from tests.support.onprem_site import (
    BROKER_HOST,
    BROKER_PORT,
    CloudClient,
    LossyRelay,
    WorkerProcess,
    running_worker,
    unique_name,
)
from tests.support.upload_stub import UploadStub

START = datetime(2023, 2, 6, 6, 0)
END = datetime(2023, 2, 6, 18, 0)  # 12 hours of 2,000 meters: 95,808 readings, ~12 MB of CSV


def broker_reachable() -> bool:
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not broker_reachable(), reason=f"no MQTT broker on {BROKER_HOST}:{BROKER_PORT}"
)


@pytest.fixture(scope="module")
def site_fleet() -> Fleet:
    return Fleet(FleetConfig(meter_count=2_000))


@pytest.fixture(scope="module")
def historian_url(tmp_path_factory: pytest.TempPathFactory, site_fleet: Fleet) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('historian')}/historian.db"
    seed_historian(url, site_fleet, START, END)
    return url


@pytest.fixture
def site(tmp_path: Path, historian_url: str) -> Iterator[tuple[WorkerProcess, CloudClient]]:
    # Small batches: the export reports progress often and checks for a cancel often.
    with running_worker(tmp_path, MF_HISTORIAN_URL=historian_url, MF_HISTORIAN_BATCH_ROWS="2000") as started:
        yield started


def job(
    job_type: str = "noop", payload: dict[str, Any] | None = None, heartbeat_seconds: int = 30
) -> JobMessage:
    return JobMessage(
        job_id=unique_name("job"),
        job_type=job_type,
        task_token=unique_name("token"),
        heartbeat_seconds=heartbeat_seconds,
        payload=payload or {},
        issued_at=datetime.now(UTC),
    )


def export_job(upload_url: str, heartbeat_seconds: int = 30) -> JobMessage:
    payload = {"start": START.isoformat(), "end": END.isoformat(), "upload_url": upload_url}
    return job("historian.export", payload, heartbeat_seconds)


def results(cloud: CloudClient, job_id: str, count: int = 1) -> list[ResultMessage]:
    return [
        ResultMessage.parse(message.payload) for message in cloud.wait_for(Channel.RESULTS, job_id, count)
    ]


def test_a_noop_job_gets_exactly_one_succeeded_result(site: tuple[WorkerProcess, CloudClient]) -> None:
    worker, cloud = site
    # GIVEN a connected worker WHEN the cloud dispatches a noop job
    noop = job()
    cloud.send_job(noop)
    # THEN it answers once, succeeded, to the job's own token
    [result] = results(cloud, noop.job_id)
    assert (result.status, result.output, result.task_token) == (JobStatus.SUCCEEDED, {}, noop.task_token)
    with pytest.raises(TimeoutError):
        cloud.wait_for(Channel.RESULTS, noop.job_id, count=2, timeout=1.0)
    # AND the journal holds its result, acknowledged by the broker
    worker.wait_for_journal(noop.job_id, lambda rows: rows[0]["result_acknowledged"] == 1)


def test_mqtt_3_1_1_serves_jobs_too(tmp_path: Path) -> None:
    # GIVEN a worker speaking MQTT 3.1.1 (the embedded broker's protocol) WHEN it gets a job THEN it answers
    with running_worker(tmp_path, MF_MQTT_PROTOCOL="3.1.1") as (worker, cloud):
        noop = job()
        cloud.send_job(noop)
        assert results(cloud, noop.job_id)[0].status is JobStatus.SUCCEEDED
        worker.wait_for_journal(noop.job_id, lambda rows: rows[0]["result_acknowledged"] == 1)


def test_a_job_whose_handler_raises_is_reported_failed_with_the_class_name(
    site: tuple[WorkerProcess, CloudClient],
) -> None:
    _, cloud = site
    # GIVEN an export whose presigned URL the storage refuses
    with UploadStub(status=403) as refusing:
        export = export_job(refusing.url())
        cloud.send_job(export)
        # THEN the job fails with the exception's class and message, never as a success
        [result] = results(cloud, export.job_id)
    assert result.status is JobStatus.FAILED
    assert result.error == "UploadFailed"
    assert result.cause is not None and "HTTP 403" in result.cause
    assert result.output is None


def test_the_same_job_runs_once_however_often_it_is_delivered(
    site: tuple[WorkerProcess, CloudClient], site_fleet: Fleet
) -> None:
    worker, cloud = site
    with UploadStub(read_delay=0.005) as storage:
        # GIVEN an export published twice, the second copy arriving while the first runs
        export = export_job(storage.url())
        cloud.send_job(export)
        cloud.send_job(export)
        # THEN one result comes, from one run that uploaded once
        [first] = cloud.wait_for(Channel.RESULTS, export.job_id)
        with pytest.raises(TimeoutError):
            cloud.wait_for(Channel.RESULTS, export.job_id, count=2, timeout=1.0)
        # WHEN the same message comes a third time, after the job finished
        cloud.send_job(export)
        # THEN the stored result is sent again, byte for byte: the job did not run again
        again = cloud.wait_for(Channel.RESULTS, export.job_id, count=2)
    assert again[1].payload == first.payload
    assert len(storage.uploads) == 1
    [row] = worker.journal_rows(export.job_id)
    assert row["state"] == "finished"
    assert "delivered again while it runs: ignored" in worker.log()
    assert "delivered again after it finished" in worker.log()


def test_a_retry_with_a_new_token_runs_again(site: tuple[WorkerProcess, CloudClient]) -> None:
    worker, cloud = site
    # GIVEN a job that finished WHEN Step Functions retries it with a new token (same job id)
    first = job()
    cloud.send_job(first)
    results(cloud, first.job_id)
    retry = first.model_copy(update={"task_token": unique_name("token")})
    cloud.send_job(retry)
    # THEN the retry runs and answers its own token
    answers = results(cloud, first.job_id, count=2)
    assert [answer.task_token for answer in answers] == [first.task_token, retry.task_token]
    assert len(worker.journal_rows(first.job_id)) == 2


def test_malformed_jobs_are_answered_when_they_can_be_and_the_worker_keeps_serving(
    site: tuple[WorkerProcess, CloudClient],
) -> None:
    worker, cloud = site
    # GIVEN a job missing its fields but carrying a token, one of an unknown type, and one unreadable
    cloud.publish(Channel.JOBS, json.dumps({"job_id": "broken-1", "task_token": "token-broken"}).encode())
    unknown = job("reactor.scram")
    cloud.send_job(unknown)
    cloud.publish(Channel.JOBS, b"\x00 not json at all")
    # THEN the first two are failed to their tokens with the reason
    [malformed] = results(cloud, "broken-1")
    assert (malformed.status, malformed.error, malformed.task_token) == (
        JobStatus.FAILED,
        "MalformedJob",
        "token-broken",
    )
    assert malformed.cause is not None and "job_type" in malformed.cause
    [unknown_result] = results(cloud, unknown.job_id)
    assert (unknown_result.status, unknown_result.error) == (JobStatus.FAILED, "UnknownJobType")
    # AND the unreadable one is logged, and the worker still serves the next job
    noop = job()
    cloud.send_job(noop)
    assert results(cloud, noop.job_id)[0].status is JobStatus.SUCCEEDED
    assert "dropped a job message without a readable task token" in worker.log()


def test_a_cancel_during_a_slow_export_yields_a_cancelled_result(
    site: tuple[WorkerProcess, CloudClient],
) -> None:
    _, cloud = site
    with UploadStub(read_delay=0.05) as slow_storage:
        # GIVEN an export under way (its first progress report is in)
        export = export_job(slow_storage.url())
        cloud.send_job(export)
        cloud.wait_for(Channel.PROGRESS, export.job_id)
        # WHEN the cloud cancels it
        cloud.publish(
            Channel.CANCEL, b'{"version": 1, "job_id": "%s", "reason": "stopped"}' % export.job_id.encode()
        )
        # THEN the job stops on site and reports the cancel to its token; nothing is stored
        [result] = results(cloud, export.job_id)
        assert slow_storage.uploads == []
    assert (result.status, result.error, result.cause) == (JobStatus.CANCELLED, "JobCancelled", "stopped")
    assert result.task_token == export.task_token


def test_heartbeats_and_progress_accompany_an_export_that_uploads_the_historians_rows(
    site: tuple[WorkerProcess, CloudClient], site_fleet: Fleet
) -> None:
    _, cloud = site
    # GIVEN an export that takes a few seconds (slow storage) with HeartbeatSeconds = 3
    with UploadStub(read_delay=0.02) as storage:
        export = export_job(storage.url(), heartbeat_seconds=3)
        sent_at = time.monotonic()
        cloud.send_job(export)
        [result] = results(cloud, export.job_id)
    # THEN heartbeats came from the start, about every second (HeartbeatSeconds / 3)
    beats = [message.at for message in cloud.messages(Channel.HEARTBEATS, export.job_id)]
    assert len(beats) >= 3
    assert beats[0] - sent_at < 0.5
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    assert 0.8 < statistics.median(gaps) < 1.2
    assert max(gaps) < 2.0
    # AND progress rose to every row, and the upload holds exactly the historian's readings
    window = site_fleet.window(START, END)
    progress = [json.loads(message.payload) for message in cloud.messages(Channel.PROGRESS, export.job_id)]
    assert (progress[-1]["fraction"], progress[-1]["rows"]) == (1.0, window.record_count)
    [upload] = storage.uploads
    assert upload.body == encode_csv(site_fleet.records(window, 0, window.record_count))
    assert result.status is JobStatus.SUCCEEDED
    assert result.output is not None
    assert (result.output["rows"], result.output["bytes"]) == (window.record_count, len(upload.body))


def test_a_job_cut_short_by_sigkill_is_reported_failed_by_the_restarted_worker(
    site: tuple[WorkerProcess, CloudClient],
) -> None:
    worker, cloud = site
    with UploadStub(read_delay=0.05) as slow_storage:
        # GIVEN an export in its upload WHEN the worker is killed outright
        export = export_job(slow_storage.url())
        cloud.send_job(export)
        assert slow_storage.started.wait(30)
        worker.kill()
        # THEN the restarted worker tells the job's token that the attempt died with it
        worker.start()
        [result] = results(cloud, export.job_id)
    assert (result.status, result.error, result.task_token) == (
        JobStatus.FAILED,
        "WorkerRestarted",
        export.task_token,
    )


def test_a_result_whose_puback_never_came_is_resent_after_sigkill_and_restart(tmp_path: Path) -> None:
    # GIVEN a worker whose packets to the broker are lost from the moment its job arrives
    with LossyRelay() as relay, running_worker(tmp_path, MF_MQTT_PORT=str(relay.port)) as (worker, cloud):
        relay.drop_upstream.set()
        noop = job()
        cloud.send_job(noop)
        # WHEN it finishes the job (journaled, never acknowledged) and is killed
        worker.wait_for_journal(noop.job_id, lambda rows: bool(rows) and rows[0]["state"] == "finished")
        worker.kill()
        [stored] = worker.journal_rows(noop.job_id)
        assert stored["result_acknowledged"] == 0
        assert cloud.messages(Channel.RESULTS, noop.job_id) == []
        # THEN the restarted worker (reaching the broker directly) sends the journaled result
        worker.start(MF_MQTT_PORT=str(BROKER_PORT))
        resent = cloud.wait_for(Channel.RESULTS, noop.job_id)
        assert resent[0].payload == stored["result"]
        # AND the job ran once: every copy is the stored result, and the broker's PUBACK is recorded
        worker.wait_for_journal(noop.job_id, lambda rows: rows[0]["result_acknowledged"] == 1)
        assert len(worker.journal_rows(noop.job_id)) == 1
        assert all(
            message.payload == stored["result"] for message in cloud.messages(Channel.RESULTS, noop.job_id)
        )


def test_sigterm_stops_the_worker_cleanly(site: tuple[WorkerProcess, CloudClient]) -> None:
    worker, _ = site
    # GIVEN a running worker WHEN docker stop sends SIGTERM THEN it exits 0 and withdraws its health file
    assert worker.terminate() == 0
    assert not worker.health_file.exists()
    assert "stopped" in worker.log()


def test_jobs_published_while_the_worker_is_down_wait_for_it(site: tuple[WorkerProcess, CloudClient]) -> None:
    worker, cloud = site
    # GIVEN a stopped worker (its persistent session stays on the broker)
    worker.terminate()
    # WHEN a job is published THEN the worker runs it once it is back
    waiting = job()
    cloud.send_job(waiting)
    worker.start()
    assert results(cloud, waiting.job_id)[0].status is JobStatus.SUCCEEDED
