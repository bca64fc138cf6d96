"""On-premises bridge benchmarks (issue 4): the round trip of a no-op job over the real broker with
mutual TLS, and ``historian.export`` of 10,000 meters x 1 day from PostgreSQL against a direct
single-process query and file write, measured in the same run.

The worker is ``python -m onprem_worker`` in its own process (its own journal, MQTT 3.1.1, TLS files
from the broker's PKI); the cloud is paho holding the bridge identity, publishing jobs as the
dispatcher does and taking results as the site bridge does; a local HTTP server stands in for S3
behind the presigned PUT. Everything shares this machine with PostgreSQL and Mosquitto, so ratios, not absolute figures,
are what compare across runs: medians after a warm-up, the baseline interleaved with the worker.

``python -m bench.bridge_bench`` prints the results as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.hes_bench import MemorySampler
from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.localcloud.historian_seed import seed_historian
from meterflow.localcloud.mqtt_broker import (
    BrokerIdentity,
    LocalBroker,
    MqttClientOptions,
    mqtt_client_options,
    start_local_broker,
)
from meterflow.localcloud.onsite_worker import OnsiteWorker, admit_worker
from onprem_worker.contracts import (
    SITE_TO_CLOUD,
    Channel,
    HistorianExportPayload,
    JobMessage,
    JobStatus,
    ResultMessage,
    parse_topic,
    topic,
)

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TENANT, WORKER = "bench-utility", "bench-site"
EXPORT_DAY = datetime(2023, 4, 3)
HEARTBEAT_SECONDS = 60
# A Step Functions task token is several hundred characters of base64; this one is 683.
TOKEN_BYTES = 512
TIME_FORMAT = "YYYY-MM-DD HH24:MI:SS.US"  # the worker's (and HES's) YYYY-MM-DD HH:MM:SS.ffffff
BASELINE_COPY = (
    f"COPY (SELECT to_char(time, '{TIME_FORMAT}'), to_char(arrival_time, '{TIME_FORMAT}'), device_id,"
    " measure_name, load, crrnt, pf, kva, kw, vltg FROM readings"
    " WHERE time >= %s AND time < %s ORDER BY time, device_id) TO STDOUT (FORMAT csv)"
)
_BLOCK = 1 << 20


def _machine() -> dict[str, Any]:
    return {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


# ------------------------------------------------------------------------------------ the S3 stand-in
@dataclass(frozen=True)
class Upload:
    path: str
    size: int
    sha256: str
    lines: int


class UploadReceiver:
    """Takes presigned-style PUTs as S3 would: reads the body in 1 MiB blocks, hashes and counts
    its lines (keeping nothing in memory), answers 200. The bench compares what it got with the
    baseline's file."""

    def __init__(self) -> None:
        self.uploads: list[Upload] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                remaining = int(self.headers.get("Content-Length", "0"))
                digest, lines, size = hashlib.sha256(), 0, 0
                while remaining > 0:
                    block = self.rfile.read(min(_BLOCK, remaining))
                    if not block:
                        return  # the client gave up midway
                    digest.update(block)
                    lines += block.count(b"\n")
                    size += len(block)
                    remaining -= len(block)
                receiver.uploads.append(Upload(self.path, size, digest.hexdigest(), lines))
                self.send_response(200)
                self.send_header("ETag", f'"{digest.hexdigest()[:32]}"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, key: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bucket/{key}?X-Amz-Signature=bench"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------------ the cloud side
class CloudSide:
    """The cloud, with the bridge identity over two connections as the local runtime has them: one
    publishes jobs (QoS 1, like the dispatcher's MqttSitePublisher), the other takes what the worker
    sends back (results, progress, heartbeats, like the site bridge), timing each result's arrival on
    paho's network thread. (One connection doing both would add the bench's own Nagle stall: its
    PUBACKs of the last result hold the next job back until the broker's delayed ACK.)"""

    def __init__(self, broker: LocalBroker, tenant: str, worker: str) -> None:
        self.tenant, self.worker = tenant, worker
        self._results: dict[str, tuple[float, bytes]] = {}
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        identity = BrokerIdentity.bridge()
        self._dispatch_options = mqtt_client_options(identity, broker, connection="bench-dispatch")
        self._receive_options = mqtt_client_options(identity, broker, connection="bench-results")
        self._dispatcher = self._client(self._dispatch_options)
        self._receiver = self._client(self._receive_options)
        self._receiver.on_connect = self._on_connect
        self._receiver.on_subscribe = lambda *_args: self._subscribed.set()
        self._receiver.on_message = self._on_message

    @staticmethod
    def _client(options: MqttClientOptions) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=options.protocol,
            clean_session=True,
        )
        client.tls_set_context(options.tls_context())
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic(self.tenant, self.worker, channel), 1) for channel in SITE_TO_CLOUD])

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        at = time.perf_counter()
        _, _, channel = parse_topic(message.topic)
        if channel is not Channel.RESULTS:
            return
        result = ResultMessage.parse(message.payload)
        with self._arrived:
            self._results[result.job_id] = (at, bytes(message.payload))
            self._arrived.notify_all()

    def __enter__(self) -> Self:
        for client, options in (
            (self._receiver, self._receive_options),
            (self._dispatcher, self._dispatch_options),
        ):
            client.connect(options.host, options.port, keepalive=60)
            client.loop_start()
        if not self._subscribed.wait(15):
            raise TimeoutError("the bridge client did not subscribe")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in (self._dispatcher, self._receiver):
            client.disconnect()
            client.loop_stop()

    def round_trip(self, job: JobMessage, timeout_s: float) -> tuple[float, ResultMessage]:
        """Seconds from the publish of ``job`` to the arrival of its result, and the result."""
        payload = job.encode()
        started = time.perf_counter()
        info = self._dispatcher.publish(topic(self.tenant, self.worker, Channel.JOBS), payload, qos=1)
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while job.job_id not in self._results:
                if not self._arrived.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no result for {job.job_id} within {timeout_s} s")
            at, raw = self._results.pop(job.job_id)
        info.wait_for_publish(10)  # the broker's PUBACK, long in by now
        if not info.is_published():
            raise AssertionError(f"{job.job_id} was answered but the broker never acknowledged it")
        result = ResultMessage.parse(raw)
        if result.task_token != job.task_token:
            raise AssertionError(f"the result of {job.job_id} carries another token")
        return at - started, result


def _job(job_type: str, payload: dict[str, Any]) -> JobMessage:
    return JobMessage(
        job_id=f"{job_type.replace('.', '-')}-{uuid.uuid4().hex}",
        job_type=job_type,
        task_token=secrets.token_urlsafe(TOKEN_BYTES),
        heartbeat_seconds=HEARTBEAT_SECONDS,
        payload=payload,
        issued_at=datetime.now(UTC),
    )


# ------------------------------------------------------------------------------------ the worker
class WorkerProcess(OnsiteWorker):
    """``python -m onprem_worker`` in its own process, with mutual TLS to the private broker."""

    def __init__(self, directory: Path, broker: LocalBroker, historian_url: str) -> None:
        site_environment = {
            **admit_worker(broker, TENANT, WORKER),
            "MF_JOURNAL_PATH": str(directory / "journal.sqlite3"),
            "MF_HEALTH_FILE": str(directory / "alive"),
            "MF_HISTORIAN_URL": historian_url,
            "TMPDIR": str(directory),  # the export's spool
        }
        super().__init__({**os.environ, **site_environment}, directory / "worker.log")


# ------------------------------------------------------------------------------------ measurements
def _percentile(samples: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least ``fraction`` of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _noop_round_trips(cloud: CloudSide, jobs: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        _, result = cloud.round_trip(_job("noop", {}), timeout_s=30)
        assert result.status is JobStatus.SUCCEEDED, result
    samples = []
    started = time.perf_counter()
    for _ in range(jobs):
        seconds, result = cloud.round_trip(_job("noop", {}), timeout_s=30)
        assert result.status is JobStatus.SUCCEEDED, result
        samples.append(seconds * 1000)
    elapsed = time.perf_counter() - started
    return {
        "jobs": jobs,
        "warmup_jobs": warmup,
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(_percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
        "min_ms": round(min(samples), 2),
        "jobs_per_s": round(jobs / elapsed, 1),
        "note": "sequential: publish (QoS 1) of a noop JobMessage to the arrival of its ResultMessage",
    }


def _baseline(conninfo: str, start: datetime, end: datetime, path: Path) -> float:
    """The direct way, in one process: the same rows out of PostgreSQL with COPY, formatted as the
    worker writes them, into a file on local disk."""
    started = time.perf_counter()
    with (
        psycopg.connect(conninfo) as connection,
        connection.cursor() as cursor,
        path.open("wb") as file,
        cursor.copy(BASELINE_COPY, (start, end)) as copy,
    ):
        for chunk in copy:
            file.write(chunk)
    return time.perf_counter() - started


def _file_digest(path: Path) -> tuple[str, int]:
    digest, lines = hashlib.sha256(), 0
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
            lines += block.count(b"\n")
    return digest.hexdigest(), lines


@dataclass(frozen=True)
class ExportRun:
    seconds: float
    output: dict[str, Any]
    upload: Upload
    peak_rss: int


def _worker_export(
    cloud: CloudSide, receiver: UploadReceiver, worker_pid: int, start: datetime, end: datetime
) -> ExportRun:
    key = f"bench/export-{uuid.uuid4().hex[:8]}.csv"
    payload = HistorianExportPayload(
        start=start, end=end, upload_url=receiver.url(key), upload_headers={"Content-Type": "text/csv"}
    ).model_dump(mode="json")
    job = _job("historian.export", payload)
    receiver.uploads.clear()
    with MemorySampler(psutil.Process(worker_pid)) as memory:
        seconds, result = cloud.round_trip(job, timeout_s=600)
    assert result.status is JobStatus.SUCCEEDED and result.output is not None, result
    [upload] = receiver.uploads
    assert upload.path.startswith(f"/bucket/{key}"), upload.path
    return ExportRun(seconds, result.output, upload, memory.peak_main)


def _export_benchmark(
    cloud: CloudSide,
    receiver: UploadReceiver,
    worker_pid: int,
    conninfo: str,
    scratch: Path,
    expected_rows: int,
    repeats: int,
) -> dict[str, Any]:
    start, end = EXPORT_DAY, EXPORT_DAY + timedelta(days=1)
    baseline_path = scratch / "baseline.csv"
    worker_s, baseline_s, peaks = [], [], []
    matches: list[bool] = []
    runs: list[ExportRun] = []
    baseline_sha, baseline_lines, baseline_bytes = "", 0, 0
    for attempt in range(repeats + 1):  # the first round warms up
        # Alternate which goes first, so neither always meets the caches the other left.
        if attempt % 2:
            export = _worker_export(cloud, receiver, worker_pid, start, end)
            b_seconds = _baseline(conninfo, start, end, baseline_path)
        else:
            b_seconds = _baseline(conninfo, start, end, baseline_path)
            export = _worker_export(cloud, receiver, worker_pid, start, end)
        baseline_sha, baseline_lines = _file_digest(baseline_path)
        baseline_bytes = baseline_path.stat().st_size
        assert baseline_lines == expected_rows, baseline_lines
        assert export.output["rows"] == expected_rows and export.upload.lines == expected_rows, export
        assert export.output["sha256"] == export.upload.sha256, "the upload is not the file the worker wrote"
        matches.append(export.upload.sha256 == baseline_sha and export.upload.size == baseline_bytes)
        baseline_path.unlink()
        if attempt == 0:
            continue
        worker_s.append(export.seconds)
        baseline_s.append(b_seconds)
        peaks.append(export.peak_rss)
        runs.append(export)
    worker, baseline = statistics.median(worker_s), statistics.median(baseline_s)
    last = runs[-1]
    return {
        "rows": expected_rows,
        "bytes": last.upload.size,
        "worker_seconds": [round(s, 3) for s in worker_s],
        "worker_seconds_median": round(worker, 3),
        "worker_rows_per_s": round(expected_rows / worker),
        "baseline_seconds": [round(s, 3) for s in baseline_s],
        "baseline_seconds_median": round(baseline, 3),
        "baseline_rows_per_s": round(expected_rows / baseline),
        "worker_over_baseline": round(baseline / worker, 3),
        "upload_equals_baseline_file": all(matches),
        "upload_lines": last.upload.lines,
        "baseline_lines": baseline_lines,
        "worker_peak_rss_mb": round(max(peaks) / 2**20, 1),
        "target": "worker_over_baseline >= 0.5",
        "note": (
            "worker: job published to succeeded result (COPY out of PostgreSQL, Arrow CSV, spool,"
            " SHA-256, presigned-style PUT to a local HTTP receiver); baseline: one psycopg"
            " COPY (SELECT ... ORDER BY time, device_id) TO STDOUT into a file, same bytes"
        ),
    }


# ------------------------------------------------------------------------------------ the run
def run(noop_jobs: int = 200, noop_warmup: int = 20, export_repeats: int = 3) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": _machine()}
    fleet = Fleet(FleetConfig(meter_count=10_000))
    schema = f"bench_bridge_{uuid.uuid4().hex[:10]}"
    conninfo = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    historian_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        started = time.perf_counter()
        rows = seed_historian(historian_url, fleet, EXPORT_DAY, EXPORT_DAY + timedelta(days=1))
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE readings")  # stable plans: autovacuum won't strike mid-run
        vacuumed = time.perf_counter() - started
        result["historian_seed"] = {
            "rows": rows,
            "seconds": round(seeded, 2),
            "rows_per_s": round(rows / seeded),
            "vacuum_analyze_seconds": round(vacuumed, 2),
        }
        with tempfile.TemporaryDirectory(prefix="meterflow-bridge-bench-") as directory:
            scratch = Path(directory)
            broker = start_local_broker(scratch / "broker", [BrokerIdentity.bridge()])
            with broker, UploadReceiver() as receiver:
                worker = WorkerProcess(scratch, broker, historian_url)
                try:
                    worker.start()
                    with CloudSide(broker, TENANT, WORKER) as cloud:
                        result["noop_round_trip"] = _noop_round_trips(cloud, noop_jobs, noop_warmup)
                        result["historian_export_10k_meters_1_day"] = _export_benchmark(
                            cloud, receiver, worker.pid, conninfo, scratch, rows, export_repeats
                        )
                except BaseException:
                    print(f"--- worker log ---\n{worker.log_tail()}", file=sys.stderr)
                    raise
                finally:
                    worker.stop()
                result["broker"] = {"kind": broker.kind, "mqtt_protocol": "3.1.1", "tls": "mutual"}
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
