"""HES benchmarks: readings page latency (first vs deep page), export throughput vs a
single-process baseline, and the local cloud's resident memory during the export.

Everything runs in one process tree on this machine, measured in the same run, so the ratios are
comparable even when the absolute figures move with the machine's load. Medians of repeated runs,
after a warm-up (memory left idle is slow to touch again on these machines).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from meterflow.hes.domain.export import encode_csv, gzip_member
from meterflow.hes.domain.fleet import Fleet
from meterflow.localcloud.hes_client import HesClient
from meterflow.localcloud.local_cloud import LocalCloud, LocalCloudConfig

PAGE_START = "2023-02-27 00:00:00.000000"
DEEP_OFFSET = 9_000_000
EXPORT_START = datetime(2023, 3, 6)


@dataclass
class MemorySampler:
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    root: psutil.Process
    peak_total: int = 0
    peak_main: int = 0
    peak_child: int = 0  # the largest single child process (a worker)
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(0.05):
            try:
                main = self.root.memory_info().rss
                children = [child.memory_info().rss for child in self.root.children(recursive=True)]
            except psutil.Error:
                continue
            self.peak_main = max(self.peak_main, main)
            self.peak_child = max(self.peak_child, *children, 0)
            self.peak_total = max(self.peak_total, main + sum(children))

    def __enter__(self) -> MemorySampler:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None and self._thread is not None
        self._stop.set()
        self._thread.join()


def _page_latency_ms(client: HesClient, offset: int, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.readings(start_date=PAGE_START, page_size=100, offset=offset)
        response.raise_for_status()
        assert len(response.json()["records"]) == 100
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _baseline_seconds(fleet: Fleet, start: datetime, end: datetime, directory: Path) -> tuple[float, int]:
    """Single process: generate the same records and write one gzip-level-1 CSV to local disk."""
    started = time.perf_counter()
    window = fleet.window(start, end)
    batch = fleet.records(window, 0, window.record_count)
    (directory / "baseline.csv.gz").write_bytes(gzip_member(encode_csv(batch)))
    return time.perf_counter() - started, window.record_count


def run(repeats: int = 3, page_repeats: int = 40) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}
    }
    with tempfile.TemporaryDirectory() as scratch:
        config = LocalCloudConfig(state_dir=Path(scratch) / "state").with_free_ports()
        with LocalCloud(config) as cloud:
            client = HesClient(cloud.api_url)
            fleet = Fleet(config.fleet)
            # --- readings page latency
            _page_latency_ms(client, 0, 10)
            _page_latency_ms(client, DEEP_OFFSET, 10)
            first = _page_latency_ms(client, 0, page_repeats)
            deep = _page_latency_ms(client, DEEP_OFFSET, page_repeats)
            results["readings_page_100"] = {
                "first_page_ms_median": round(statistics.median(first), 2),
                "first_page_ms_p95": round(sorted(first)[int(0.95 * len(first)) - 1], 2),
                "deep_page_offset": DEEP_OFFSET,
                "deep_page_ms_median": round(statistics.median(deep), 2),
                "deep_page_ms_p95": round(sorted(deep)[int(0.95 * len(deep)) - 1], 2),
                "deep_over_first": round(statistics.median(deep) / statistics.median(first), 3),
                "target": "deep_over_first <= 1.5",
            }
            # --- export throughput against the baseline, interleaved so both see the same machine state
            workflow_s, baseline_s, statuses = [], [], []
            peak_total = peak_main = 0
            record_count = 0
            for attempt in range(repeats + 1):  # the first round is a warm-up
                day = EXPORT_START + timedelta(days=attempt)
                b_seconds, record_count = _baseline_seconds(
                    fleet, day, day + timedelta(days=1), Path(scratch)
                )
                with MemorySampler(psutil.Process()) as memory:
                    started = time.perf_counter()
                    accepted = client.request_file(str(day), str(day + timedelta(days=1)))
                    accepted.raise_for_status()
                    outcome = client.wait_for_file(accepted.json()["request_id"], poll_s=0.05)
                    w_seconds = time.perf_counter() - started
                assert outcome.status["status"] == "completed", outcome.status
                assert outcome.status["record_count"] == record_count
                if attempt == 0:
                    continue
                workflow_s.append(w_seconds)
                baseline_s.append(b_seconds)
                statuses.append(" > ".join(outcome.statuses_seen))
                peak_total, peak_main = max(peak_total, memory.peak_total), max(peak_main, memory.peak_main)
            workflow, baseline = statistics.median(workflow_s), statistics.median(baseline_s)
            results["export_10k_meters_1_day"] = {
                "records": record_count,
                "workflow_seconds_median": round(workflow, 3),
                "workflow_records_per_s": round(record_count / workflow),
                "baseline_seconds_median": round(baseline, 3),
                "baseline_records_per_s": round(record_count / baseline),
                "workflow_over_baseline": round(baseline / workflow, 3),
                "runs": {
                    "workflow_s": [round(x, 3) for x in workflow_s],
                    "baseline_s": [round(x, 3) for x in baseline_s],
                },
                "statuses": statuses[0],
                "target": "workflow_over_baseline >= 0.5",
            }
            results["local_cloud_memory_during_export"] = {
                "peak_rss_total_mb": round(peak_total / 2**20, 1),
                "peak_rss_main_process_mb": round(peak_main / 2**20, 1),
                "note": "main process = moto server + API + SFTP; total adds the worker processes",
            }
    return results
