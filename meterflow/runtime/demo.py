"""The HES scenario of seed 000, end to end against a running local cloud."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from meterflow.domain.timeutil import format_hes_time, parse_hes_time
from meterflow.runtime.hes_client import HesClient, count_gzip_lines, save_private_key, sftp_get
from meterflow.runtime.local_cloud import SFTP_USER, LocalCloud

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
