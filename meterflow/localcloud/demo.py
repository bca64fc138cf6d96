"""The HES scenario of seed 000, end to end against a running local cloud."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.localcloud.hes_client import HesClient, count_gzip_lines, save_private_key, sftp_get
from meterflow.localcloud.local_cloud import SFTP_USER, LocalCloud

if TYPE_CHECKING:
    from meterflow.lake.wiring import LakeServices

DEMO_START = "2023-02-27 00:00:00.000000"
SAMPLE_PAGE_START = "2023-02-27 16:00:00.000000"


def run_demo(cloud: LocalCloud, download_dir: Path, export_hours: int) -> str:
    assert cloud.spec is not None and cloud.clients is not None and cloud.sftp is not None
    client = HesClient(cloud.api_url)

    page = client.readings(start_date=SAMPLE_PAGE_START, page_size=3)
    page.raise_for_status()
    sample = page.json()
    next_page = client.readings(
        start_date=SAMPLE_PAGE_START, page_size=3, offset=sample["results"]["last_offset"]
    )
    next_page.raise_for_status()

    end = format_hes_time(parse_hes_time(DEMO_START, "start") + timedelta(hours=export_hours))
    accepted = client.request_file(DEMO_START, end)
    accepted.raise_for_status()
    request_id = accepted.json()["request_id"]
    outcome = client.wait_for_file(request_id)
    if outcome.status["status"] != "completed":
        raise RuntimeError(f"export failed: {outcome.status}")

    download_dir.mkdir(parents=True, exist_ok=True)
    key_path = save_private_key(
        cloud.clients.secretsmanager, cloud.spec.secret("sftp_private_key").name, download_dir / "private.pem"
    )
    location = outcome.status["sftp_location"]
    local_file = sftp_get(
        cloud.config.host,
        cloud.sftp.port,
        SFTP_USER,
        key_path,
        cloud.known_hosts_path,
        location,
        download_dir / Path(location).name,
    )
    lines = count_gzip_lines(local_file)
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
            f"last_offset={sample['results']['last_offset']} next page starts at offset "
            f"{next_page.json()['records'][0]['offset']}",
            f"              first: {json.dumps(first)}",
            f"              last:  {json.dumps(last)}",
            f"Export:       POST /readings/file {DEMO_START} .. {end} -> request {request_id}",
            f"              statuses {' > '.join(outcome.statuses_seen)} in {outcome.seconds:.1f} s",
            f"              record_count={record_count:,}  sftp_location={location}",
            f"SFTP:         downloaded {local_file} ({local_file.stat().st_size / 1e6:.1f} MB), "
            f"{lines:,} lines = record_count",
        ]
    )


ROW_COUNT = "row_count"
DEMO_LAKE_WINDOWS = 2
DEMO_LAKE_WINDOW_HOURS = 3


def run_lake_demo(cloud: LocalCloud) -> str:
    """The input adapter pulls two windows from the HES; London, weather and topology join them."""
    import time
    from datetime import date

    from meterflow.hes.domain.fleet import Fleet
    from meterflow.lake.domain.dataflows import land_london_file, publish_topology, publish_weather
    from meterflow.lake.domain.integrations import Integration
    from meterflow.lake.domain.london import synthetic_london_file
    from meterflow.lake.domain.queries import run_named_query
    from meterflow.lake.domain.weather_source import SimulatedWeather
    from meterflow.lake.wiring import lake_services

    assert cloud.spec is not None and cloud.sftp is not None
    started = time.monotonic()
    lake = lake_services()
    fleet = Fleet(cloud.config.fleet)
    topology = publish_topology(fleet, lake.integrated)
    first = parse_hes_time(DEMO_START, "start")
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
    integration = Integration.new(
        "hes-demo",
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
    lake.integrations.put(integration)
    windows = []
    for _ in range(DEMO_LAKE_WINDOWS):
        current = lake.integrations.get("hes-demo")
        assert current is not None
        window = (current.window_start, current.window_end)
        cloud.run_scheduler_once()
        deadline = time.monotonic() + 600
        while True:
            current = lake.integrations.get("hes-demo")
            assert current is not None
            if current.state == "failed":
                raise RuntimeError(f"input adapter failed: {current.failure_reason}")
            if current.state == "idle" and current.window_start == window[1]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("input adapter did not finish a window in 10 minutes")
            time.sleep(0.5)
        windows.append(window)
    finished = lake.integrations.get("hes-demo")
    assert finished is not None
    lake.integrations.put(finished.model_copy(update={"enabled": False}))

    processed = lake.inbound.list_keys("processed/hes-demo/")
    file_ids = [f"hes-demo-{key.rsplit('/', 1)[1].removesuffix('.csv.gz')}" for key in processed]
    manifests = _wait_for_manifests(lake, [*file_ids, str(london["file_id"])])
    stats = run_named_query("lake_stats", {}, lake.query_engine())
    quarantined = sum(int(m["lines_quarantined"]) for m, _ in manifests)
    late_merged = sum(int(record["rows_added"]) for _, records in manifests for record in records)
    lines = [
        "",
        "== Meterflow data lake demo ==",
        f"Topology:     {topology['meters']:,} meters, {topology['assets']:,} grid assets under topology/",
        f"Weather:      {weather['hours']} hourly observations in {weather['days']} day partition(s)",
    ]
    for start, end in windows:
        lines.append(f"Input adapter: window {start} .. {end} pulled over HTTP + SFTP, ingested, archived")
    for manifest, _records in manifests:
        lines.append(
            f"Manifest:     {manifest['file_id']}: {manifest['lines_read']:,} lines read = "
            f"{manifest['lines_valid']:,} valid + {manifest['lines_quarantined']} quarantined; "
            f"{manifest['rows_written']:,} rows written, {manifest['rows_duplicate']:,} duplicates, "
            f"{manifest['rows_late_staged']:,} late"
        )
    columns = stats["columns"]
    partitions = sum(int(row[columns.index("partitions")]) for row in stats["rows"])
    rows = sum(int(row[columns.index("row_count")]) for row in stats["rows"])
    lines += [
        f"Lake:         {partitions:,} partitions, {rows:,} rows "
        f"({', '.join(f'{row[0]}={int(str(row[columns.index(ROW_COUNT)])):,}' for row in stats['rows'])})",
        f"Quarantined:  {quarantined} lines (errors/)",
        f"Late reads:   {late_merged:,} rows merged into their true partitions by the late-read consumer",
        f"Lake demo finished in {time.monotonic() - started:.1f} s",
    ]
    return "\n".join(lines)


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


def run_bridge_demo(cloud: LocalCloud) -> str:
    """One historian backfill through an on-premises worker started as its own process."""
    import os
    import subprocess
    import sys
    import time

    import requests

    from meterflow.hes.domain.fleet import Fleet
    from meterflow.lake.wiring import lake_services
    from meterflow.localcloud.historian_seed import seed_historian
    from meterflow.localcloud.lake_watch import manifest, wait_for, wait_ingested

    started = time.monotonic()
    site = cloud.config.state_dir / "demo-site"
    site.mkdir(parents=True, exist_ok=True)
    historian = f"sqlite:///{site / 'historian.sqlite'}"
    first = parse_hes_time(DEMO_START, "start")
    window = (first + timedelta(days=1), first + timedelta(days=1, hours=2))
    seeded = seed_historian(historian, Fleet(cloud.config.fleet), *window)
    health = site / "healthy"
    health.unlink(missing_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        **cloud.provision_site(BRIDGE_DEMO_TENANT, BRIDGE_DEMO_WORKER),
        "MF_HISTORIAN_URL": historian,
        "MF_JOURNAL_PATH": str(site / "journal.sqlite"),
        "MF_HEALTH_FILE": str(health),
    }
    with (site / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "onprem_worker"], env=environment, stdout=log, stderr=log
        )
    try:
        wait_for(lambda: health.exists(), 60, "the on-premises worker to connect")
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
        job_id = answer.json()["job_id"]

        def ended() -> dict[str, Any] | None:
            body = dict(requests.get(f"{cloud.api_url}/jobs/{job_id}", timeout=30).json())
            return body if body["status"] in {"succeeded", "failed", "cancelled"} else None

        job = wait_for(ended, 300, "the backfill to end")
        if job["status"] != "succeeded":
            raise RuntimeError(f"backfill {job_id} {job['status']}: {job.get('failure_reason')}")
        lake = lake_services()
        file_id = f"historian-{BRIDGE_DEMO_TENANT}-{job_id}"
        wait_ingested(lake, file_id, timeout_s=300)
        ingested = manifest(lake, file_id)
    finally:
        worker.terminate()
        worker.wait(30)
    output = job["output"]
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
