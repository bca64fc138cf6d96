"""Lake ingest benchmark: 10,000 meters x 1 day from an uncompressed file in the inbound bucket
to compacted partitions (late reads merged), against a single-process pyarrow pipeline that parses
the same CSV, turns it long and writes the same hive-partitioned Parquet to local disk."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from bench.hes_bench import MemorySampler
from meterflow.domain.export import encode_csv
from meterflow.domain.fleet import Fleet, FleetConfig
from meterflow.domain.lake.dataflows import publish_topology
from meterflow.domain.lake.schema import HES_READING_TYPES, WIDE_COLUMNS
from meterflow.runtime.local_cloud import LocalCloud, LocalCloudConfig
from meterflow.stack import LakeTuning

FIRST_DAY = datetime(2023, 4, 3)


def _baseline(data: bytes, directory: Path) -> float:
    started = time.perf_counter()
    table = pacsv.read_csv(
        pa.py_buffer(data), read_options=pacsv.ReadOptions(column_names=list(WIDE_COLUMNS))
    )
    stamps = table["time"]
    parts = []
    for kind in HES_READING_TYPES:
        count = table.num_rows
        parts.append(
            pa.table(
                {
                    "meter_id": table["device_id"],
                    "reading_value": pc.cast(table[kind.name], pa.float64()),
                    "reading_date_time": stamps,
                    "unit": pa.repeat(kind.unit, count),
                    "obis_code": pa.repeat(kind.obis_code, count),
                    "phase": pa.repeat(kind.phase, count),
                    "reading_source": pa.repeat("hes", count),
                    "reading_type": pa.repeat(kind.name, count),
                    "year": pc.year(stamps),
                    "month": pc.month(stamps),
                    "day": pc.day(stamps),
                    "hour": pc.hour(stamps),
                }
            )
        )
    ds.write_dataset(
        pa.concat_tables(parts),
        directory,
        format="parquet",
        partitioning=["reading_type", "year", "month", "day", "hour"],
        partitioning_flavor="hive",
        existing_data_behavior="overwrite_or_ignore",
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
    )
    return time.perf_counter() - started


def run(repeats: int = 2) -> dict[str, Any]:
    fleet_config = FleetConfig(meter_count=10_000)
    fleet = Fleet(fleet_config)
    config = LocalCloudConfig(
        state_dir=Path(tempfile.mkdtemp(prefix="meterflow-bench-")),
        fleet=fleet_config,
        stack_name="meterflow-bench",
        lake=LakeTuning(ingest_poll_interval_seconds=1),
        scheduler_interval_seconds=3600,
    ).with_free_ports()
    result: dict[str, Any] = {
        "machine": {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}
    }
    workflow_s: list[float] = []
    ingested_s: list[float] = []
    baseline_s: list[float] = []
    peaks: list[tuple[int, int]] = []
    lines = 0
    with LocalCloud(config):
        from meterflow.lake_wiring import lake_services
        from meterflow.runtime.lake_watch import wait_ingested, wait_late_merged

        lake = lake_services()
        publish_topology(fleet, lake.integrated)
        for repeat in range(repeats + 1):  # the first run warms up
            day = FIRST_DAY + timedelta(days=repeat)
            window = fleet.window(day, day + timedelta(days=1))
            data = encode_csv(fleet.records(window, 0, window.record_count))
            lines = window.record_count
            with tempfile.TemporaryDirectory() as directory:
                baseline = _baseline(data, Path(directory))
            key = f"uncompressed/bench/day-{day:%Y%m%d}.csv"
            with MemorySampler(psutil.Process()) as memory:
                # the clock starts when the file is in the bucket: its upload is not ingestion
                lake.inbound.put(key, data, content_type="text/csv")
                started = time.perf_counter()
                wait_ingested(lake, f"bench-day-{day:%Y%m%d}", timeout_s=900)
                ingested = time.perf_counter() - started
                wait_late_merged(lake, f"bench-day-{day:%Y%m%d}", timeout_s=900)
                elapsed = time.perf_counter() - started
            if repeat:
                workflow_s.append(elapsed)
                ingested_s.append(ingested)
                baseline_s.append(baseline)
                peaks.append((memory.peak_total, memory.peak_main))
    workflow = statistics.median(workflow_s)
    base = statistics.median(baseline_s)
    rows = lines * 6
    result["ingest_10k_meters_1_day"] = {
        "wide_lines": lines,
        "long_rows": rows,
        "workflow_seconds": [round(s, 2) for s in workflow_s],
        "workflow_seconds_median": round(workflow, 2),
        "workflow_rows_per_s": round(rows / workflow),
        # the lake-ingest workflow alone (manifest written), before the late-read consumer's merges
        "ingest_workflow_seconds_median": round(statistics.median(ingested_s), 2),
        "baseline_seconds": [round(s, 2) for s in baseline_s],
        "baseline_seconds_median": round(base, 2),
        "baseline_rows_per_s": round(rows / base),
        "workflow_over_baseline": round(base / workflow, 2),
        "peak_rss_total_mb": round(max(p[0] for p in peaks) / 2**20),
        "peak_rss_main_process_mb": round(max(p[1] for p in peaks) / 2**20),
    }
    return result
