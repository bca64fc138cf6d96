"""The HES scenario of seed 000, end to end against a running local cloud."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.localcloud.hes_client import (
    ExportOutcome,
    HesClient,
    count_gzip_lines,
    save_private_key,
    sftp_get,
)
from meterflow.localcloud.local_cloud import SFTP_USER, LocalCloud
from meterflow.localcloud.onsite_worker import OnsiteWorker

if TYPE_CHECKING:
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.lake.domain.integrations import Integration
    from meterflow.lake.wiring import LakeServices

DEMO_START = "2023-02-27 00:00:00.000000"
SAMPLE_PAGE_START = "2023-02-27 16:00:00.000000"


def run_demo(cloud: LocalCloud, download_dir: Path, export_hours: int) -> str:
    assert cloud.spec is not None and cloud.clients is not None and cloud.sftp is not None
    client = HesClient(cloud.api_url)
    sample, next_offset = _sample_page(client)
    end = format_hes_time(parse_hes_time(DEMO_START, "start") + timedelta(hours=export_hours))
    request_id, outcome = _export(client, DEMO_START, end)
    local_file, lines = _download_export(cloud, download_dir, outcome.status["sftp_location"])
    record_count = outcome.status["record_count"]
    if lines != record_count:
        raise RuntimeError(f"downloaded file has {lines} lines, the API reported {record_count}")

    fleet = cloud.config.fleet
    first, last = sample["records"][0], sample["records"][-1]
    return "\n".join(
        [
            "== Meterflow HES demo ==",
            f"Fleet:        {fleet.meter_count:,} meters, {fleet.interval_minutes}-minute interval, "
            f"seed {fleet.seed}",
            f"Sample page:  GET /readings?start_date={SAMPLE_PAGE_START}&page_size=3",
            f"              records_total={sample['results']['records_total']:,} "
            f"last_offset={sample['results']['last_offset']} next page starts at offset {next_offset}",
            f"              first: {json.dumps(first)}",
            f"              last:  {json.dumps(last)}",
            f"Export:       POST /readings/file {DEMO_START} .. {end} -> request {request_id}",
            f"              statuses {' > '.join(outcome.statuses_seen)} in {outcome.seconds:.1f} s",
            f"              record_count={record_count:,}  sftp_location={outcome.status['sftp_location']}",
            f"SFTP:         downloaded {local_file} ({local_file.stat().st_size / 1e6:.1f} MB), "
            f"{lines:,} lines = record_count",
        ]
    )


def _sample_page(client: HesClient) -> tuple[dict[str, Any], Any]:
    """A three-record page of readings, and the offset the page after it starts at."""
    page = client.readings(start_date=SAMPLE_PAGE_START, page_size=3)
    page.raise_for_status()
    sample: dict[str, Any] = page.json()
    next_page = client.readings(
        start_date=SAMPLE_PAGE_START, page_size=3, offset=sample["results"]["last_offset"]
    )
    next_page.raise_for_status()
    return sample, next_page.json()["records"][0]["offset"]


def _export(client: HesClient, start: str, end: str) -> tuple[str, ExportOutcome]:
    """Request the file of ``start`` .. ``end`` and wait until the export completed."""
    accepted = client.request_file(start, end)
    accepted.raise_for_status()
    request_id: str = accepted.json()["request_id"]
    outcome = client.wait_for_file(request_id)
    if outcome.status["status"] != "completed":
        raise RuntimeError(f"export failed: {outcome.status}")
    return request_id, outcome


def _download_export(cloud: LocalCloud, download_dir: Path, location: str) -> tuple[Path, int]:
    """The exported file fetched over SFTP with the key from the secret store, and its line count."""
    assert cloud.spec is not None and cloud.clients is not None and cloud.sftp is not None
    download_dir.mkdir(parents=True, exist_ok=True)
    key_path = save_private_key(
        cloud.clients.secretsmanager, cloud.spec.secret("sftp_private_key").name, download_dir / "private.pem"
    )
    local_file = sftp_get(
        cloud.config.host,
        cloud.sftp.port,
        SFTP_USER,
        key_path,
        cloud.known_hosts_path,
        location,
        download_dir / Path(location).name,
    )
    return local_file, count_gzip_lines(local_file)


ROW_COUNT = "row_count"
DEMO_LAKE_WINDOWS = 2
DEMO_LAKE_WINDOW_HOURS = 3
DEMO_INTEGRATION = "hes-demo"
_WINDOW_TIMEOUT_SECONDS = 600


def run_lake_demo(cloud: LocalCloud) -> str:
    """The input adapter pulls two windows from the HES; London, weather and topology join them."""
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.lake.domain.queries import run_named_query
    from meterflow.lake.wiring import lake_services

    started = time.monotonic()
    lake = lake_services()
    fleet = Fleet(cloud.config.fleet)
    first = parse_hes_time(DEMO_START, "start")
    topology, weather, london = _publish_reference_data(lake, fleet, first)
    lake.integrations.put(_demo_integration(cloud, first))
    windows = _run_adapter_windows(cloud, lake, DEMO_LAKE_WINDOWS)

    processed = lake.inbound.list_keys(f"processed/{DEMO_INTEGRATION}/")
    file_ids = [f"{DEMO_INTEGRATION}-{key.rsplit('/', 1)[1].removesuffix('.csv.gz')}" for key in processed]
    manifests = _wait_for_manifests(lake, [*file_ids, str(london["file_id"])])
    stats = run_named_query("lake_stats", {}, lake.query_engine())
    lines = [
        "",
        "== Meterflow data lake demo ==",
        f"Topology:     {topology['meters']:,} meters, {topology['assets']:,} grid assets under topology/",
        f"Weather:      {weather['hours']} hourly observations in {weather['days']} day partition(s)",
    ]
    for start, end in windows:
        lines.append(f"Input adapter: window {start} .. {end} pulled over HTTP + SFTP, ingested, archived")
    lines += [_manifest_line(manifest) for manifest, _records in manifests]
    lines += _lake_totals(stats, manifests)
    lines.append(f"Lake demo finished in {time.monotonic() - started:.1f} s")
    return "\n".join(lines)


def _publish_reference_data(
    lake: LakeServices, fleet: Fleet, first: datetime
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The fleet's topology, a day of weather and a London file: what the HES readings join."""
    from meterflow.lake.domain.dataflows import land_london_file, publish_topology, publish_weather
    from meterflow.lake.domain.london import synthetic_london_file
    from meterflow.lake.domain.weather_source import SimulatedWeather

    topology = publish_topology(fleet, lake.integrated)
    weather = publish_weather(
        SimulatedWeather(fleet.config.seed), first, first + timedelta(days=1), lake.integrated
    )
    london = land_london_file(
        "lcl_demo_block.csv",
        synthetic_london_file(households=50, days=7, start=date(2013, 1, 1), seed=fleet.config.seed),
        lake.inbound,
        lake.integrated,
        first,
    )
    return topology, weather, london


def _demo_integration(cloud: LocalCloud, first: datetime) -> Integration:
    """An integration pulling the local HES over its HTTP API and SFTP, window by window."""
    from meterflow.lake.domain.integrations import Integration

    assert cloud.spec is not None and cloud.sftp is not None
    return Integration.new(
        DEMO_INTEGRATION,
        first,
        DEMO_LAKE_WINDOW_HOURS * 60,
        15,
        hes_api_url=cloud.api_url,
        sftp_host=cloud.config.host,
        sftp_port=cloud.sftp.port,
        sftp_user=SFTP_USER,
        sftp_host_key=cloud.sftp.host_key.export_public_key().decode().strip(),
        sftp_secret_name=cloud.spec.secret("sftp_private_key").name,
    )


def _run_adapter_windows(cloud: LocalCloud, lake: LakeServices, count: int) -> list[tuple[str, str]]:
    """Run the scheduler ``count`` times, each time until the window it started is done; then
    disable the integration. Returns the windows pulled."""
    windows = []
    for _ in range(count):
        current = lake.integrations.get(DEMO_INTEGRATION)
        assert current is not None
        window = (current.window_start, current.window_end)
        cloud.run_scheduler_once()
        _wait_for_window(lake, window[1])
        windows.append(window)
    finished = lake.integrations.get(DEMO_INTEGRATION)
    assert finished is not None
    lake.integrations.put(finished.model_copy(update={"enabled": False}))
    return windows


def _wait_for_window(lake: LakeServices, window_end: str) -> None:
    """Until the integration is idle with its next window starting at ``window_end``."""
    deadline = time.monotonic() + _WINDOW_TIMEOUT_SECONDS
    while True:
        current = lake.integrations.get(DEMO_INTEGRATION)
        assert current is not None
        if current.state == "failed":
            raise RuntimeError(f"input adapter failed: {current.failure_reason}")
        if current.state == "idle" and current.window_start == window_end:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("input adapter did not finish a window in 10 minutes")
        time.sleep(0.5)


def _manifest_line(manifest: dict[str, Any]) -> str:
    return (
        f"Manifest:     {manifest['file_id']}: {manifest['lines_read']:,} lines read = "
        f"{manifest['lines_valid']:,} valid + {manifest['lines_quarantined']} quarantined; "
        f"{manifest['rows_written']:,} rows written, {manifest['rows_duplicate']:,} duplicates, "
        f"{manifest['rows_late_staged']:,} late"
    )


def _lake_totals(
    stats: dict[str, Any], manifests: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> list[str]:
    """The lake's partitions and rows by reading type, what was quarantined and what came late."""
    columns = stats["columns"]
    partitions = sum(int(row[columns.index("partitions")]) for row in stats["rows"])
    rows = sum(int(row[columns.index("row_count")]) for row in stats["rows"])
    quarantined = sum(int(m["lines_quarantined"]) for m, _ in manifests)
    late_merged = sum(int(record["rows_added"]) for _, records in manifests for record in records)
    return [
        f"Lake:         {partitions:,} partitions, {rows:,} rows "
        f"({', '.join(f'{row[0]}={int(str(row[columns.index(ROW_COUNT)])):,}' for row in stats['rows'])})",
        f"Quarantined:  {quarantined} lines (errors/)",
        f"Late reads:   {late_merged:,} rows merged into their true partitions by the late-read consumer",
    ]


def _wait_for_manifests(
    lake: LakeServices, file_ids: list[str]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each file's manifest and, once merged, its late-read records."""
    from meterflow.localcloud.lake_watch import manifest, wait_ingested, wait_late_merged

    result = []
    for file_id in file_ids:
        wait_ingested(lake, file_id, timeout_s=600)
        result.append((manifest(lake, file_id), wait_late_merged(lake, file_id, timeout_s=600)))
    return result


BRIDGE_DEMO_TENANT = "demo-utility"
BRIDGE_DEMO_WORKER = "substation-1"
_WORKER_READY_SECONDS = 60


@dataclass(frozen=True)
class _DemoSite:
    directory: Path
    historian_url: str
    window: tuple[datetime, datetime]
    seeded: int  # readings in the historian


def run_bridge_demo(cloud: LocalCloud) -> str:
    """One historian backfill through an on-premises worker started as its own process."""
    from meterflow.lake.wiring import lake_services
    from meterflow.localcloud.lake_watch import manifest, wait_ingested

    started = time.monotonic()
    site = _seed_demo_site(cloud)
    worker = _site_worker(cloud, site).start(ready_timeout_s=_WORKER_READY_SECONDS)
    try:
        job_id, job = _run_backfill(cloud, site.window)
        lake = lake_services()
        file_id = f"historian-{BRIDGE_DEMO_TENANT}-{job_id}"
        wait_ingested(lake, file_id, timeout_s=300)
        ingested = manifest(lake, file_id)
    finally:
        worker.stop()
    output = job["output"]
    seeded, window = site.seeded, site.window
    return "\n".join(
        [
            "",
            "== Meterflow on-premises bridge demo ==",
            f"Site:         {BRIDGE_DEMO_TENANT}/{BRIDGE_DEMO_WORKER}, its own process, MQTT with mutual "
            f"TLS ({cloud.broker.kind if cloud.broker else '?'} broker), no AWS credentials on site",
            f"Historian:    {seeded:,} readings of {window[0]:%Y-%m-%d %H:%M} .. {window[1]:%H:%M} in SQLite",
            f"Backfill:     job {job_id}: {job['status']} in {job['attempts']} attempt(s); "
            f"{output['rows']:,} rows, {output['bytes']:,} bytes uploaded with a presigned PUT",
            f"Lake:         {file_id}: {ingested['rows_written']:,} long rows written, "
            f"{ingested['lines_quarantined']} lines quarantined",
            f"Bridge demo finished in {time.monotonic() - started:.1f} s",
        ]
    )


def _seed_demo_site(cloud: LocalCloud) -> _DemoSite:
    """A site directory whose SQLite historian holds two hours of the fleet's readings."""
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.localcloud.historian_seed import seed_historian

    directory = cloud.config.state_dir / "demo-site"
    directory.mkdir(parents=True, exist_ok=True)
    historian = f"sqlite:///{directory / 'historian.sqlite'}"
    first = parse_hes_time(DEMO_START, "start")
    window = (first + timedelta(days=1), first + timedelta(days=1, hours=2))
    seeded = seed_historian(historian, Fleet(cloud.config.fleet), *window)
    return _DemoSite(directory, historian, window, seeded)


def _site_worker(cloud: LocalCloud, site: _DemoSite) -> OnsiteWorker:
    """The site's worker, provisioned in the local cloud (certificates and MQTT settings)."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        **cloud.provision_site(BRIDGE_DEMO_TENANT, BRIDGE_DEMO_WORKER),
        "MF_HISTORIAN_URL": site.historian_url,
        "MF_JOURNAL_PATH": str(site.directory / "journal.sqlite"),
        "MF_HEALTH_FILE": str(site.directory / "healthy"),
    }
    return OnsiteWorker(environment, site.directory / "worker.log")


def _run_backfill(cloud: LocalCloud, window: tuple[datetime, datetime]) -> tuple[str, dict[str, Any]]:
    """Start a backfill of ``window`` over HTTP and wait until it succeeded: its id and its job."""
    from meterflow.localcloud.lake_watch import wait_for

    answer = requests.post(
        f"{cloud.api_url}/backfills",
        json={
            "tenant": BRIDGE_DEMO_TENANT,
            "worker": BRIDGE_DEMO_WORKER,
            "start": window[0].isoformat(),
            "end": window[1].isoformat(),
        },
        timeout=30,
    )
    answer.raise_for_status()
    job_id: str = answer.json()["job_id"]

    def ended() -> dict[str, Any] | None:
        body = dict(requests.get(f"{cloud.api_url}/jobs/{job_id}", timeout=30).json())
        return body if body["status"] in {"succeeded", "failed", "cancelled"} else None

    job = wait_for(ended, 300, "the backfill to end")
    if job["status"] != "succeeded":
        raise RuntimeError(f"backfill {job_id} {job['status']}: {job.get('failure_reason')}")
    return job_id, job
