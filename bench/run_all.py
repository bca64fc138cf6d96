"""``make bench``: run every benchmark and write bench/results/*.json and a Markdown summary."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import bridge_bench, hes_bench, lake_bench

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    hes = hes_bench.run()
    hes["when"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    hes["python"] = platform.python_version()
    (RESULTS / "hes.json").write_text(json.dumps(hes, indent=2) + "\n")
    page, export = hes["readings_page_100"], hes["export_10k_meters_1_day"]
    memory = hes["local_cloud_memory_during_export"]
    lines = [
        "# HES benchmarks",
        "",
        f"Run {hes['when']} on {hes['machine']['cpus']} CPUs / {hes['machine']['memory_gb']} GiB, Python {hes['python']}.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| GET /readings page of 100, offset 0 (median / p95) | {page['first_page_ms_median']} / {page['first_page_ms_p95']} ms | |",
        f"| GET /readings page of 100, offset {page['deep_page_offset']:,} (median / p95) | {page['deep_page_ms_median']} / {page['deep_page_ms_p95']} ms | |",
        f"| deep page / first page | {page['deep_over_first']} | <= 1.5 |",
        f"| export {export['records']:,} records, POST to completed (median) | {export['workflow_seconds_median']} s = {export['workflow_records_per_s']:,} rec/s | |",
        f"| single-process baseline, same records to gzip-1 CSV on disk (median) | {export['baseline_seconds_median']} s = {export['baseline_records_per_s']:,} rec/s | |",
        f"| workflow / baseline throughput | {export['workflow_over_baseline']} | >= 0.5 |",
        f"| local cloud peak RSS during export (all processes / main) | {memory['peak_rss_total_mb']} / {memory['peak_rss_main_process_mb']} MB | |",
        "",
    ]
    (RESULTS / "hes.md").write_text("\n".join(lines))

    lake = lake_bench.run()
    lake["when"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    (RESULTS / "lake.json").write_text(json.dumps(lake, indent=2) + "\n")
    ingest = lake["ingest_10k_meters_1_day"]
    received = lake["ingest_1_day_received_with_late_reads"]
    (RESULTS / "lake.md").write_text(
        "\n".join(
            [
                "# Lake ingest benchmark",
                "",
                f"Run {lake['when']} on {lake['machine']['cpus']} CPUs / {lake['machine']['memory_gb']} GiB.",
                "",
                "| measure | value | target |",
                "|---|---|---|",
                f"| ingest {ingest['wide_lines']:,} lines ({ingest['long_rows']:,} long rows), one day by reading time, file in inbound bucket to compacted partitions (median) | {ingest['workflow_seconds_median']} s = {ingest['workflow_rows_per_s']:,} rows/s | |",
                f"| of which the lake-ingest workflow, to the manifest (median; the file has no late reads) | {ingest['ingest_workflow_seconds_median']} s | |",
                f"| single-process pyarrow baseline: parse, wide-to-long, hive-partitioned Parquet on local disk (median) | {ingest['baseline_seconds_median']} s = {ingest['baseline_rows_per_s']:,} rows/s | |",
                f"| workflow / baseline throughput | {ingest['workflow_over_baseline']} | >= 0.5 |",
                f"| local cloud peak RSS during ingest (all processes / main / largest worker) | {ingest['peak_rss_total_mb']} / {ingest['peak_rss_main_process_mb']} / {ingest['peak_rss_largest_worker_mb']} MB | |",
                "",
                "A day pulled by arrival time (what the input adapter's incremental pulls deliver) also holds the late",
                "reads of the day before; their partitions, already in the lake, are rewritten by the late-read consumer:",
                "",
                "| measure | runs |",
                "|---|---|",
                f"| lines (of which late long rows) | {', '.join(f'{n:,} ({late:,})' for n, late in zip(received['wide_lines'], received['late_rows'], strict=True))} |",
                f"| seconds to the manifest | {', '.join(map(str, received['ingest_workflow_seconds']))} |",
                f"| seconds to late reads merged | {', '.join(map(str, received['seconds_to_late_reads_merged']))} |",
                f"| long rows/s (median) | {received['rows_per_s_median']:,} |",
                f"| largest worker peak RSS | {received['peak_rss_largest_worker_mb']} MB |",
                "",
            ]
        )
    )

    bridge = bridge_bench.run()
    bridge["when"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    (RESULTS / "bridge.json").write_text(json.dumps(bridge, indent=2) + "\n")
    noop, site_export = bridge["noop_round_trip"], bridge["historian_export_10k_meters_1_day"]
    seed, broker = bridge["historian_seed"], bridge["broker"]
    (RESULTS / "bridge.md").write_text(
        "\n".join(
            [
                "# On-premises bridge benchmarks",
                "",
                f"Run {bridge['when']} on {bridge['machine']['cpus']} CPUs / {bridge['machine']['memory_gb']} GiB;"
                f" {broker['kind']} with {broker['tls']} TLS, MQTT {broker['mqtt_protocol']}; the worker is"
                " `python -m onprem_worker` in its own process.",
                "",
                "| measure | value | target |",
                "|---|---|---|",
                f"| no-op job, publish to result, {noop['jobs']} sequential jobs after {noop['warmup_jobs']} warm-up (p50 / p99 / max) | {noop['p50_ms']} / {noop['p99_ms']} / {noop['max_ms']} ms = {noop['jobs_per_s']} jobs/s | |",
                f"| seed the PostgreSQL historian with {seed['rows']:,} rows (10,000 meters x 1 day) | {seed['seconds']} s = {seed['rows_per_s']:,} rows/s | |",
                f"| `historian.export` of {site_export['rows']:,} rows ({site_export['bytes']:,} bytes), job published to succeeded result, upload included (median) | {site_export['worker_seconds_median']} s = {site_export['worker_rows_per_s']:,} rows/s | |",
                f"| single-process baseline: psycopg COPY of the same query to a file, same bytes (median) | {site_export['baseline_seconds_median']} s = {site_export['baseline_rows_per_s']:,} rows/s | |",
                f"| worker / baseline throughput | {site_export['worker_over_baseline']} | >= 0.5 |",
                f"| uploaded file equals the baseline's byte for byte | {'yes' if site_export['upload_equals_baseline_file'] else 'no'} | |",
                f"| worker process peak RSS during the export | {site_export['worker_peak_rss_mb']} MB | |",
                "",
            ]
        )
    )
    print("\n".join(lines))
    ok = (
        page["deep_over_first"] <= 1.5
        and export["workflow_over_baseline"] >= 0.5
        and ingest["workflow_over_baseline"] >= 0.5
        and site_export["worker_over_baseline"] >= 0.5
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
