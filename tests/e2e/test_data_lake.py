"""The meter data lake end to end: the input adapter pulls windows from the local HES over HTTP
and SFTP, the lake-ingest workflow turns them into partitioned Parquet, late reads land in their
true partitions, every line is accounted for, and the catalog answers named queries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
import requests

from meterflow.core.timeutil import parse_hes_time
from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet
from meterflow.hes.domain.weather import temperature_c
from meterflow.lake.domain.dataflows import land_london_file, publish_topology, publish_weather
from meterflow.lake.domain.integrations import Integration
from meterflow.lake.domain.london import parse_london_lcl, synthetic_london_file
from meterflow.lake.domain.queries import run_named_query
from meterflow.lake.domain.weather_source import SimulatedWeather
from meterflow.lake.wiring import LakeServices, lake_services
from meterflow.localcloud.local_cloud import SFTP_USER, LocalCloud
from tests.e2e.lake_support import (
    manifest,
    partition_objects,
    read_parquet,
    wait_for,
    wait_ingested,
    wait_late_merged,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lake(cloud: LocalCloud, fleet: Fleet) -> LakeServices:
    """The lake as the stack's own runtimes see it, with the fleet's topology published."""
    services = lake_services()
    publish_topology(fleet, services.integrated)
    return services


def hes_integration(
    cloud: LocalCloud, integration_id: str, first_window: str, **overrides: Any
) -> Integration:
    assert cloud.sftp is not None and cloud.spec is not None
    connection = {
        "hes_api_url": cloud.api_url,
        "sftp_host": cloud.config.host,
        "sftp_port": cloud.sftp.port,
        "sftp_user": SFTP_USER,
        "sftp_host_key": cloud.sftp.host_key.export_public_key().decode().strip(),
        "sftp_secret_name": cloud.spec.secret("sftp_private_key").name,
        **overrides,
    }
    return Integration.new(integration_id, parse_hes_time(first_window, "first_window"), 60, 15, **connection)


def count_rows(lake: LakeServices, where: str) -> dict[str, int]:
    result = lake.query_engine().run(
        f"SELECT reading_type, count(*) AS n FROM readings WHERE {where} GROUP BY 1"
    )
    return {str(row[0]): int(str(row[1])) for row in result.rows}


def land_uncompressed(lake: LakeServices, key: str, data: bytes) -> None:
    lake.inbound.put(key, data, content_type="text/csv")


def received_per_hour(
    fleet: Fleet, first_hour: datetime, hours: int, received_from: datetime, received_to: datetime
) -> dict[datetime, int]:
    """The simulator's arithmetic: readings per reading hour that the HES received in [from, to)."""
    window = fleet.window(first_hour, first_hour + timedelta(hours=hours))
    batch = fleet.records(window, 0, window.record_count)
    epoch = datetime(1970, 1, 1)
    low, high = ((moment - epoch) // timedelta(seconds=1) for moment in (received_from, received_to))
    arrived = (batch.arrival_s >= low) & (batch.arrival_s < high)
    hour_starts, counts = np.unique(batch.time_s[arrived] // 3600, return_counts=True)
    return {epoch + timedelta(hours=int(h)): int(n) for h, n in zip(hour_starts, counts, strict=True)}


def test_input_adapter_pulls_two_windows_into_the_lake(
    cloud: LocalCloud, lake: LakeServices, fleet: Fleet
) -> None:
    # GIVEN a HES integration pulling what the HES received, first window 2023-01-03 00:00-01:00
    lake.integrations.put(hes_integration(cloud, "hes-e2e", "2023-01-03 00:00:00"))
    # WHEN the scheduler ticks twice, each tick starting the next window once the previous is done
    for expected_next in ("2023-01-03 01:00:00.000000", "2023-01-03 02:00:00.000000"):
        cloud.run_scheduler_once()

        def advanced(target: str = expected_next) -> Integration | None:
            current = lake.integrations.get("hes-e2e")
            assert current is not None
            assert current.state != "failed", current.failure_reason
            return current if current.state == "idle" and current.window_start == target else None

        wait_for(advanced, 240, f"the window to advance to {expected_next}")
    lake.integrations.put(lake.integrations.get("hes-e2e").model_copy(update={"enabled": False}))  # type: ignore[union-attr]
    processed = lake.inbound.list_keys("processed/hes-e2e/")
    file_ids = [f"hes-e2e-{key.rsplit('/', 1)[1].removesuffix('.csv.gz')}" for key in processed]
    assert len(file_ids) == 2

    # THEN both files are ingested, archived, cleaned up, and their late reads merged
    for file_id in file_ids:
        wait_ingested(lake, file_id)
        wait_late_merged(lake, file_id)
    assert lake.inbound.list_keys("landing/hes-e2e/") == []
    assert lake.inbound.list_keys("uncompressed/hes-e2e/") == []

    # AND the lake holds exactly six rows per reading the HES received in the two windows, in the
    # partition of its reading hour: the windows' own hours, and the hours of the day before whose
    # late reads arrived in them
    received = received_per_hour(
        fleet, datetime(2023, 1, 2), 26, datetime(2023, 1, 3), datetime(2023, 1, 3, 2)
    )
    assert datetime(2023, 1, 2, 3) in received, "the windows hold late reads of the day before"
    result = lake.query_engine().run(
        "SELECT day, hour, reading_type, count(*) FROM readings "
        "WHERE year = 2023 AND month = 1 AND day IN (2, 3) GROUP BY 1, 2, 3"
    )
    in_lake: dict[datetime, dict[str, int]] = {}
    for day, hour, kind, count in result.rows:
        in_lake.setdefault(datetime(2023, 1, int(str(day)), int(str(hour))), {})[str(kind)] = int(str(count))
    assert in_lake == {
        hour: dict.fromkeys(["load", "crrnt", "pf", "kva", "kw", "vltg"], count)
        for hour, count in received.items()
    }

    # AND the reads of hours that closed before a window began went through the late path: staged,
    # announced, and merged by the late-read consumer (the second window's into partitions the
    # first window's late merge had created)
    manifests = [manifest(lake, file_id) for file_id in file_ids]
    assert all(m["rows_late_staged"] > 0 for m in manifests)
    for file_id, m in zip(file_ids, manifests, strict=True):
        merged = wait_late_merged(lake, file_id)
        assert sum(record["rows_added"] for record in merged) == m["rows_late_staged"]
        assert all(token.split("/")[1].startswith("20230102") for token in m["late_partitions"])
    for key, data in partition_objects(lake, "readings/parquet/reading_type=kw/year=2023/month=01/").items():
        moment = datetime(2023, 1, int(key.split("day=")[1][:2]), int(key.split("hour=")[1][:2]))
        stamps = read_parquet(data)["reading_date_time"]
        assert pc.min(stamps).as_py() >= moment
        assert pc.max(stamps).as_py() < moment + timedelta(hours=1)
    for m in manifests:
        assert m["lines_quarantined"] == 0
        assert m["rows_staged"] == m["rows_written"] + m["rows_duplicate"] + m["rows_late_staged"]


def test_file_with_bad_lines_yields_a_manifest_that_adds_up(lake: LakeServices, fleet: Fleet) -> None:
    # GIVEN half an hour of readings with one bad line of each kind injected at known places
    window = fleet.window(datetime(2023, 2, 1), datetime(2023, 2, 1, 0, 30))
    good = encode_csv(fleet.records(window, 0, window.record_count)).splitlines()
    meter = fleet.device_id_list[0]
    at = "2023-02-01 00:00:00.000000"
    bad = {
        "wrong_column_count": "2023-02-01 00:00:00.000000,only,four,columns",
        "bad_timestamp": f"2023-02-30 00:00:00.000000,{at},{meter},readings,5,1,0.9,1,1,0.23",
        "unknown_meter": f"{at},{at},no-such-meter,readings,5,1,0.9,1,1,0.23",
        "non_numeric_value": f"{at},{at},{meter},readings,5,abc,0.9,1,1,0.23",
        "pf_out_of_range": f"{at},{at},{meter},readings,5,1,1.7,1,1,0.23",
    }
    lines = [line.decode() for line in good]
    positions = {}
    for offset, (reason, line) in enumerate(bad.items()):
        position = 1000 + offset * 3000
        lines.insert(position, line)
        positions[reason] = position + 1  # 1-based line number
    # WHEN the file lands in uncompressed/
    land_uncompressed(lake, "uncompressed/e2e-bad/bad-lines.csv", ("\n".join(lines) + "\n").encode())
    wait_ingested(lake, "e2e-bad-bad-lines")
    wait_late_merged(lake, "e2e-bad-bad-lines")

    # THEN the manifest accounts for every line
    m = manifest(lake, "e2e-bad-bad-lines")
    assert m["lines_read"] == len(lines)
    assert m["lines_quarantined"] == len(bad)
    assert m["quarantined_by_reason"] == dict.fromkeys(sorted(bad), 1)
    assert m["lines_valid"] == window.record_count
    assert (
        m["rows_staged"]
        == 6 * window.record_count
        == m["rows_written"] + m["rows_duplicate"] + m["rows_late_staged"]
    )
    assert all(m["checks"].values())
    # AND the quarantine names each bad line by its number in the file, with its reason and text
    quarantine = lake.integrated.get(m["quarantine_key"])
    assert quarantine is not None and m["quarantine_key"].startswith("errors/")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(quarantine.data.decode())))
    assert {row["reason"]: int(row["line_number"]) for row in rows} == positions
    assert {row["reason"]: row["line"] for row in rows} == bad

    # AND landing the same file again adds nothing: every row is a duplicate
    land_uncompressed(lake, "uncompressed/e2e-bad/bad-lines-again.csv", ("\n".join(lines) + "\n").encode())
    wait_ingested(lake, "e2e-bad-bad-lines-again")
    again = manifest(lake, "e2e-bad-bad-lines-again")
    assert again["rows_written"] == 0
    assert again["rows_duplicate"] + again["rows_late_staged"] == 6 * window.record_count


def test_killed_range_worker_leaves_partitions_byte_identical(
    cloud: LocalCloud, lake: LakeServices, fleet: Fleet
) -> None:
    # GIVEN three hours of readings ingested cleanly, and the partitions that produced
    window = fleet.window(datetime(2023, 2, 10), datetime(2023, 2, 10, 3))
    data = encode_csv(fleet.records(window, 0, window.record_count))
    day_prefix = "readings/parquet/reading_type={}/year=2023/month=02/day=10/"
    land_uncompressed(lake, "uncompressed/e2e-clean/readings.csv", data)
    wait_ingested(lake, "e2e-clean-readings")
    wait_late_merged(lake, "e2e-clean-readings")
    clean = {}
    for kind in ("load", "crrnt", "pf", "kva", "kw", "vltg"):
        clean.update(partition_objects(lake, day_prefix.format(kind)))
    assert len(clean) == 18
    lake.integrated.delete(sorted(clean))

    # WHEN the same file is ingested again and every range worker is SIGKILLed mid-range
    land_uncompressed(lake, "uncompressed/e2e-kill/readings.csv", data)
    sfn = lake.clients.stepfunctions
    machine = cloud.spec.state_machine_arn("lake_ingest")  # type: ignore[union-attr]

    def staging_started() -> bool:
        for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
            if execution["name"].startswith("e2e-kill-readings"):
                history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
                return any(event["type"] == "MapStateStarted" for event in history["events"])
        return False

    wait_for(staging_started, 60, "range staging to start")
    assert cloud.workers is not None
    victims = cloud.workers.pids("lake-jobs")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    wait_ingested(lake, "e2e-kill-readings")
    wait_late_merged(lake, "e2e-kill-readings")

    # THEN the workers were restarted, the retried ranges completed, and every partition is byte-identical
    assert not set(victims) & set(cloud.workers.pids("lake-jobs"))
    rerun = {}
    for kind in ("load", "crrnt", "pf", "kva", "kw", "vltg"):
        rerun.update(partition_objects(lake, day_prefix.format(kind)))
    assert rerun.keys() == clean.keys()
    assert all(rerun[key] == clean[key] for key in clean)


class _StuckHes(BaseHTTPRequestHandler):
    """A HES whose export never completes."""

    def do_POST(self) -> None:
        self._answer({"request_id": "never-done", "status": "queued"})

    def do_GET(self) -> None:
        self._answer(
            {"request_id": "never-done", "status": "running", "sftp_location": None, "record_count": None}
        )

    def _answer(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(200 if self.command == "GET" else 202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stuck_hes() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StuckHes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_poll_that_never_completes_fails_the_run_after_its_bound(
    cloud: LocalCloud, lake: LakeServices, stuck_hes: str
) -> None:
    # GIVEN an alert subscriber and an integration whose HES never finishes an export
    sqs, sns = lake.clients.sqs, lake.clients.sns
    alerts_url = sqs.create_queue(QueueName="e2e-alert-subscriber")["QueueUrl"]
    alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=lake.settings.alerts_topic_arn, Protocol="sqs", Endpoint=alerts_arn)
    lake.integrations.put(hes_integration(cloud, "hes-stuck", "2023-01-05 00:00:00", hes_api_url=stuck_hes))

    # WHEN the scheduler starts its run
    cloud.run_scheduler_once()

    # THEN the run fails after the bounded number of status checks, and says so
    def failed() -> Integration | None:
        current = lake.integrations.get("hes-stuck")
        return current if current is not None and current.state == "failed" else None

    integration = wait_for(failed, 60, "the stuck integration to fail")
    assert integration.failure_reason is not None and integration.failure_reason.startswith("PollTimeout")
    assert integration.window_start == "2023-01-05 00:00:00.000000"  # the window did not advance
    sfn = lake.clients.stepfunctions

    def finished_execution() -> dict[str, Any] | None:
        executions = sfn.list_executions(stateMachineArn=lake.settings.input_adapter_state_machine_arn)
        stuck = [e for e in executions["executions"] if e["name"].startswith("hes-stuck")]
        return stuck[0] if stuck and stuck[0]["status"] != "RUNNING" else None

    execution = wait_for(finished_execution, 30, "the stuck run to end")
    assert execution["status"] == "FAILED"
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    checks = [
        e
        for e in history
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "CheckFileStatus"
    ]
    assert len(checks) == cloud.config.lake.hes_poll_max_attempts + 1

    # AND an alert was published
    def alert() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=alerts_url, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(json.loads(message["Body"])["Message"])
            if body.get("integration_id") == "hes-stuck":
                return dict(body)
        return None

    published = wait_for(alert, 30, "the failure alert")
    assert published["alert"] == "InputAdapterFailed" and published["error"] == "PollTimeout"

    # AND an operator's retry sets it idle with the same window, for the next scheduler tick
    retried = run_cli(cloud, "retry", "hes-stuck")
    assert retried.returncode == 0, retried.stderr
    again = lake.integrations.get("hes-stuck")
    assert again is not None and again.state == "idle" and again.window_start == integration.window_start
    assert run_cli(cloud, "retry", "hes-stuck").returncode == 2  # only a failed integration is retried
    lake.integrations.put(again.model_copy(update={"enabled": False}))


def test_london_file_weather_and_topology_are_queryable(
    cloud: LocalCloud, lake: LakeServices, fleet: Fleet
) -> None:
    # GIVEN a London LCL file, two days of weather and the fleet's topology
    data = synthetic_london_file(households=20, days=3, start=date(2013, 3, 1), seed=7)
    landed = land_london_file("block_e2e.csv", data, lake.inbound, lake.integrated, datetime(2013, 3, 5))
    publish_weather(
        SimulatedWeather(fleet.config.seed), datetime(2023, 1, 3), datetime(2023, 1, 5), lake.integrated
    )

    # WHEN the London file is ingested
    file_id = str(landed["file_id"])
    wait_ingested(lake, file_id)
    m = manifest(lake, file_id)

    # THEN its accounting adds up with one kWh row per valid line
    assert m["rows_per_line"] == 1
    assert m["lines_read"] == m["lines_valid"] + m["lines_quarantined"]
    assert m["rows_staged"] == m["rows_written"] + m["rows_duplicate"] + m["rows_late_staged"]

    # AND the API's daily consumption for a London household equals the file's own sum
    parsed = parse_london_lcl(data, 1)
    rows = parsed.rows
    meter = rows["meter_id"][0].as_py()
    day = rows["reading_date_time"][0].as_py().date()
    pairs = zip(rows["meter_id"].to_pylist(), rows["reading_date_time"].to_pylist(), strict=True)
    mask = np.array([meter_id == meter and stamp.date() == day for meter_id, stamp in pairs])
    expected = float(np.asarray(rows["reading_value"].to_numpy())[mask].sum())
    if m["late_groups"]:
        wait_late_merged(lake, file_id)
    response = requests.get(
        f"{cloud.api_url}/lake/queries/daily_consumption",
        params={"meter_id": meter, "start_date": day.isoformat(), "end_date": day.isoformat()},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["row_count"] == 1
    kwh = body["rows"][0][body["columns"].index("kwh")]
    assert kwh == pytest.approx(expected)

    # AND the weather matches the simulator's temperature, the topology covers the fleet
    weather = requests.get(
        f"{cloud.api_url}/lake/queries/weather_daily",
        params={"start_date": "2023-01-03", "end_date": "2023-01-04"},
        timeout=60,
    ).json()
    assert weather["row_count"] == 2
    first_hour = int((datetime(2023, 1, 3) - datetime(1970, 1, 1)).total_seconds())
    hours = np.arange(first_hour, first_hour + 86_400, 3600)
    expected_max = float(temperature_c(hours, fleet.config.seed).max())
    first_day = min(weather["rows"], key=lambda row: str(row[0]))
    assert first_day[weather["columns"].index("max_temperature_c")] == pytest.approx(expected_max)
    meters = lake.query_engine().run("SELECT count(*) FROM topology_meters").rows[0][0]
    assert meters == fleet.config.meter_count

    # AND a bad query parameter is a 400 naming it, an unknown query a 404
    bad = requests.get(
        f"{cloud.api_url}/lake/queries/daily_consumption", params={"meter_id": "x'; DROP"}, timeout=30
    )
    assert bad.status_code == 400 and "meter_id" in bad.text
    assert requests.get(f"{cloud.api_url}/lake/queries/nope", timeout=30).status_code == 404


def run_cli(cloud: LocalCloud, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``meterflow lake ...`` in another process, pointed at the running cloud like a user's shell."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "meterflow.localcloud.cli",
            "lake",
            "--stack-name",
            cloud.config.stack_name,
            *arguments,
        ],
        env={**os.environ, "AWS_ENDPOINT_URL": cloud.endpoint_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_runs_a_named_query_against_the_running_lake(cloud: LocalCloud, lake: LakeServices) -> None:
    # GIVEN the running local cloud WHEN a user runs the CLI in another shell
    result = run_cli(cloud, "query", "lake_stats")
    # THEN it prints the query's rows as JSON: the same rows the stack's own engine sees
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["query"] == "lake_stats" and answer["engine"] == "duckdb"
    assert answer["rows"] == run_named_query("lake_stats", {}, lake.query_engine())["rows"]
    # AND lists the integrations, without their host keys
    listed = [json.loads(line) for line in run_cli(cloud, "integrations").stdout.splitlines()]
    assert [item["integration_id"] for item in listed] == [i.integration_id for i in lake.integrations.all()]
    assert all("sftp_host_key" not in item for item in listed)
