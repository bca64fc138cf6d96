"""POST/GET /readings/file: the export workflow end to end, faults included, and the SFTP download."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from meterflow.core.timeutil import format_hes_time, from_epoch_seconds, parse_hes_time, to_epoch_seconds
from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet
from meterflow.localcloud.hes_client import HesClient, save_private_key, sftp_get
from meterflow.localcloud.local_cloud import SFTP_USER, LocalCloud

pytestmark = pytest.mark.e2e


def execution_arn(cloud: LocalCloud, request_id: str) -> str:
    assert cloud.spec is not None
    machine = cloud.spec.state_machine("hes_export").name
    return f"arn:aws:states:{cloud.spec.region}:{cloud.spec.account_id}:execution:{machine}:{request_id}"


def history(cloud: LocalCloud, request_id: str) -> list[dict[str, Any]]:
    assert cloud.clients is not None
    paginator = cloud.clients.stepfunctions.get_paginator("get_execution_history")
    return [
        event
        for page in paginator.paginate(executionArn=execution_arn(cloud, request_id))
        for event in page["events"]
    ]


def download(cloud: LocalCloud, location: str, into: Path) -> Path:
    """seed 000: get-secret-value > private.pem; chmod 400; sftp -i private.pem ...; get <location>."""
    assert cloud.clients is not None and cloud.spec is not None and cloud.sftp is not None
    key = save_private_key(
        cloud.clients.secretsmanager, cloud.spec.secret("sftp_private_key").name, into / "private.pem"
    )
    assert oct(key.stat().st_mode & 0o777) == "0o400"
    target = into / Path(location).name
    if shutil.which("sftp"):
        completed = subprocess.run(
            [
                "sftp",
                "-b",
                "-",
                "-i",
                str(key),
                "-P",
                str(cloud.sftp.port),
                "-o",
                f"UserKnownHostsFile={cloud.known_hosts_path}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"{SFTP_USER}@{cloud.config.host}",
            ],
            input=f"get {location} {target}\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
    else:
        sftp_get(cloud.config.host, cloud.sftp.port, SFTP_USER, key, cloud.known_hosts_path, location, target)
    return target


def expected_lines(fleet: Fleet, start: str, end: str) -> bytes:
    window = fleet.window(parse_hes_time(start, "start"), parse_hes_time(end, "end"))
    return encode_csv(fleet.records(window, 0, window.record_count))


def test_seed_export_lifecycle_and_sftp_download_match_the_api(
    cloud: LocalCloud, hes: HesClient, fleet: Fleet, download_dir: Path
) -> None:
    # GIVEN the seed's file request
    start, end = "2023-02-27 16:00:00.000000", "2023-02-27 16:40:00.000000"
    # WHEN it is posted
    accepted = hes.request_file(start, end)
    # THEN it is queued, then moves through the documented statuses to completed
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "queued"
    request_id = accepted.json()["request_id"]
    outcome = hes.wait_for_file(request_id, timeout_s=120)
    assert outcome.status["status"] == "completed", outcome.status
    assert outcome.statuses_seen[-1] == "completed"
    assert set(outcome.statuses_seen) <= {"queued", "submitted", "running", "completed"}
    location = outcome.status["sftp_location"]
    assert location.startswith(f"{request_id}/run-") and location.endswith("-part-r-00000.gz")
    # AND the record count is the arithmetic count
    assert outcome.status["record_count"] == 3 * fleet.records_per_slot
    # WHEN the file is downloaded over SFTP with the key from Secrets Manager
    local = download(cloud, location, download_dir)
    lines = gzip.decompress(local.read_bytes()).decode().splitlines()
    # THEN it holds exactly the records the readings API serves for the same window, in order
    assert len(lines) == outcome.status["record_count"]
    api_records: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = hes.readings(start_date=start, end_date=end, page_size=1000, offset=offset).json()
        if not page["records"]:
            break
        api_records += page["records"]
        offset = page["results"]["last_offset"]
    assert len(api_records) == len(lines)
    for line, record in zip(lines[::997], api_records[::997], strict=True):
        fields = line.split(",")
        assert fields[0] == record["time"] and fields[1] == record["arrival_time"]
        assert fields[2] == record["device_id"]
        assert [float(value) for value in fields[5:]] == [
            record[name] for name in ("crrnt", "pf", "kva", "kw", "vltg")
        ]


def received_by_the_fleet(fleet: Fleet, start: str, end: str) -> set[tuple[str, str]]:
    """(device_id, time) of every read that arrived in [start, end), from every reading that could have."""
    first, last = parse_hes_time(start, "start"), parse_hes_time(end, "end")
    taken = fleet.window(first - timedelta(minutes=fleet.config.rates.late_max_minutes), last)
    batch = fleet.records(taken, 0, taken.record_count)
    arrived = (batch.arrival_s >= to_epoch_seconds(first)) & (batch.arrival_s < to_epoch_seconds(last))
    return {
        (fleet.device_id_list[meter], format_hes_time(from_epoch_seconds(time_s)))
        for meter, time_s in zip(
            batch.meter_index[arrived].tolist(), batch.time_s[arrived].tolist(), strict=True
        )
    }


def test_export_by_arrival_time_holds_exactly_the_reads_received_in_the_window(
    cloud: LocalCloud, hes: HesClient, fleet: Fleet, download_dir: Path
) -> None:
    # GIVEN an incremental pull: the reads the head-end received in one hour
    start, end = "2023-03-02 10:00:00.000000", "2023-03-02 11:00:00.000000"
    # WHEN it is posted with window_by=arrival_time
    accepted = hes.request_file(start, end, window_by="arrival_time")
    assert accepted.status_code == 202, accepted.text
    outcome = hes.wait_for_file(accepted.json()["request_id"], timeout_s=120)
    # THEN it completes, and the request reports its mode
    assert outcome.status["status"] == "completed", outcome.status
    assert outcome.status["window_by"] == "arrival_time"
    # WHEN the file is downloaded over SFTP
    local = download(cloud, outcome.status["sftp_location"], download_dir)
    lines = [line.split(",") for line in gzip.decompress(local.read_bytes()).decode().splitlines()]
    # THEN it has one line per counted record, each received in the window, in (time, device_id) order
    assert len(lines) == outcome.status["record_count"]
    assert all(start <= fields[1] < end for fields in lines)
    assert [(fields[0], fields[2]) for fields in lines] == sorted((fields[0], fields[2]) for fields in lines)
    # AND they are exactly the reads the fleet received then, late reads of the previous day included
    assert {(fields[2], fields[0]) for fields in lines} == received_by_the_fleet(fleet, start, end)
    assert any(fields[0] < start for fields in lines)


@pytest.mark.parametrize("window_by", ["arrival", "", None, 1, ["time"]])
def test_a_bad_window_by_gets_a_400_naming_it(hes: HesClient, window_by: object) -> None:
    body = {"start_date": "2023-02-27 16:00:00", "end_date": "2023-02-27 17:00:00", "window_by": window_by}
    response = hes.http.post(f"{hes.api_url}/readings/file", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json().keys() == {"error", "message", "field"}
    assert response.json()["field"] == "window_by"


def test_redelivered_request_message_starts_no_second_export(cloud: LocalCloud, hes: HesClient) -> None:
    assert cloud.clients is not None and cloud.settings is not None
    # GIVEN a completed export
    request_id = hes.request_file("2023-03-01 00:00:00", "2023-03-01 01:00:00").json()["request_id"]
    first = hes.wait_for_file(request_id, timeout_s=120)
    assert first.status["status"] == "completed"
    # WHEN its queue message is delivered again (SQS is at-least-once)
    message = json.dumps(
        {
            "request_id": request_id,
            "start_date": "2023-03-01 00:00:00.000000",
            "end_date": "2023-03-01 01:00:00.000000",
        }
    )
    cloud.clients.sqs.send_message(QueueUrl=cloud.settings.file_requests_queue_url, MessageBody=message)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        attributes = cloud.clients.sqs.get_queue_attributes(
            QueueUrl=cloud.settings.file_requests_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
            break
        time.sleep(0.2)
    # THEN the message was consumed, there is still one execution, and the request is unchanged
    assert attributes["ApproximateNumberOfMessages"] == "0"
    executions = cloud.clients.stepfunctions.list_executions(
        stateMachineArn=cloud.settings.export_state_machine_arn, maxResults=1000
    )["executions"]
    assert [e["name"] for e in executions].count(request_id) == 1
    assert hes.file_status(request_id).json() == first.status


def test_chunk_worker_killed_mid_chunk_is_retried_and_the_file_has_no_gap_or_duplicate(
    cloud: LocalCloud, hes: HesClient, fleet: Fleet, download_dir: Path
) -> None:
    assert cloud.workers is not None
    # GIVEN an export of two days (16 chunks) under way
    start, end = "2023-04-03 00:00:00.000000", "2023-04-05 00:00:00.000000"
    request_id = hes.request_file(start, end).json()["request_id"]
    killed = 0
    deadline = time.monotonic() + 60
    # WHEN export workers are killed with SIGKILL while chunks are in flight
    while time.monotonic() < deadline:
        events = (
            history(cloud, request_id) if hes.file_status(request_id).json()["status"] == "running" else []
        )
        if any(event.get("stateEnteredEventDetails", {}).get("name") == "ExportChunk" for event in events):
            for pid in cloud.workers.pids("export-jobs"):
                os.kill(pid, signal.SIGKILL)
                killed += 1
            break
        time.sleep(0.05)
    assert killed, "the export never reached its chunk stage"
    outcome = hes.wait_for_file(request_id, timeout_s=180)
    # THEN lost chunks time out on their heartbeat, restarted workers retry them, and the export completes
    assert outcome.status["status"] == "completed", outcome.status
    timed_out = [event for event in history(cloud, request_id) if event["type"] == "TaskTimedOut"]
    assert timed_out, "no heartbeat timeout was recorded: the kill did not hit a running chunk"
    assert cloud.workers.restarts >= killed
    # AND the file is byte-for-byte the records of the window: no gap, no duplicate line
    local = download(cloud, outcome.status["sftp_location"], download_dir)
    assert gzip.decompress(local.read_bytes()) == expected_lines(fleet, start, end)


def test_a_workflow_that_cannot_finish_ends_failed_with_a_reason(cloud: LocalCloud, hes: HesClient) -> None:
    assert cloud.clients is not None and cloud.settings is not None
    # GIVEN an accepted request whose workflow receives a window the planner must reject
    request_id = hes.request_file("2023-05-01 00:00:00", "2023-05-01 01:00:00").json()["request_id"]
    hes.wait_for_file(request_id, timeout_s=120)
    # WHEN an operator starts an execution with a corrupt input
    cloud.clients.stepfunctions.start_execution(
        stateMachineArn=cloud.settings.export_state_machine_arn,
        name=f"{request_id}-manual",
        input=json.dumps(
            {"request_id": request_id, "start_date": "corrupt", "end_date": "2023-05-01 01:00:00"}
        ),
    )
    # THEN the request ends failed, with the planner's reason, and the execution is not left running
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = hes.file_status(request_id).json()
        if status["status"] == "failed":
            break
        time.sleep(0.2)
    assert status["status"] == "failed", status
    assert "InvalidInput" in status["failure_reason"] and "start_date" in status["failure_reason"]
    described = cloud.clients.stepfunctions.describe_execution(
        executionArn=execution_arn(cloud, f"{request_id}-manual")
    )
    assert described["status"] == "FAILED"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("not json", 400, "body"),
        ("", 400, "body"),
        ('{"start_date": "2023-02-27 16:00:00"}', 400, "end_date"),
        ('{"start_date": "2023-02-27 16:00:00", "end_date": "2023-02-27 15:00:00"}', 400, "end_date"),
        ('{"start_date": "2023-02-27", "end_date": "2023-02-28", "extra": 1}', 400, "extra"),
        ("[1, 2]", 400, "body"),
    ],
)
def test_bad_file_requests_get_a_4xx_naming_the_field(
    hes: HesClient, body: str, status: int, field: str
) -> None:
    response = hes.http.post(
        f"{hes.api_url}/readings/file", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("request_id", "status"),
    [("", 400), ("not-a-uuid", 400), ("55e3059d-6274-4d97-89a8-40ca93bcd084", 404)],
)
def test_unknown_or_malformed_request_ids(hes: HesClient, request_id: str, status: int) -> None:
    response = hes.file_status(request_id)
    assert response.status_code == status
    assert response.json()["field"] == "request_id"


@pytest.mark.skipif(
    shutil.which("aws") is None, reason="the AWS CLI is not installed; boto3 covers the secret"
)
def test_seed_aws_cli_command_retrieves_the_private_key(cloud: LocalCloud, download_dir: Path) -> None:
    assert cloud.spec is not None
    # GIVEN the environment `make up` tells users to export
    env = {**os.environ, "AWS_ENDPOINT_URL": cloud.endpoint_url, "AWS_REGION": cloud.spec.region}
    secret = cloud.spec.secret("sftp_private_key").name
    # WHEN the seed's command runs
    completed = subprocess.run(
        [
            "aws",
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            secret,
            "--output",
            "text",
            "--query",
            "SecretString",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    # THEN it prints the PEM private key of the SFTP user
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("-----BEGIN RSA PRIVATE KEY-----")
