"""One local cloud per test session, driven over HTTP, SFTP and boto3 like a user would.

The cloud is the embedded moto server unless ``AWS_ENDPOINT_URL`` names another (LocalStack), so
this same suite is the LocalStack end-to-end suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.hes.domain.fleet import Fleet
from meterflow.localcloud.hes_client import HesClient
from meterflow.localcloud.local_cloud import LocalCloud, LocalCloudConfig
from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning

# Short heartbeats so a killed worker is detected in seconds, not the production minute.
E2E_TUNING = ExportTuning(chunk_heartbeat_seconds=4, finalize_heartbeat_seconds=4, chunk_timeout_seconds=120)
# Polls every second, a HES poll bound of 8 checks, and short heartbeats for the fault tests.
E2E_LAKE = LakeTuning(
    hes_poll_interval_seconds=1,
    hes_poll_max_attempts=8,
    ingest_poll_interval_seconds=1,
    ingest_poll_max_attempts=240,
    stage_heartbeat_seconds=4,
    stage_timeout_seconds=120,
    compact_heartbeat_seconds=4,
    compact_timeout_seconds=120,
    transfer_heartbeat_seconds=4,
    transfer_timeout_seconds=120,
)
# A lost site worker is noticed after 6 s without heartbeats; the retry follows a second later and
# must hear from the (restarted) worker within 6 s of its dispatch.
E2E_BRIDGE = BridgeTuning(site_heartbeat_seconds=6, site_timeout_seconds=300, site_retry_interval_seconds=1)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state_dir = tmp_path_factory.mktemp("meterflow-state")
    config = LocalCloudConfig(
        state_dir=state_dir,
        tuning=E2E_TUNING,
        heartbeat_interval_seconds=1.0,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        stack_name="meterflow-e2e",
        lake=E2E_LAKE,
        bridge=E2E_BRIDGE,
        # small ranges, so a one-hour file is split among several range workers
        range_min_bytes=400_000,
        # the tests tick the scheduler themselves, one window at a time
        scheduler_interval_seconds=3600,
    ).with_free_ports()
    with LocalCloud(config) as running:
        yield running


@pytest.fixture(scope="session")
def hes(cloud: LocalCloud) -> HesClient:
    return HesClient(cloud.api_url)


@pytest.fixture(scope="session")
def fleet(cloud: LocalCloud) -> Fleet:
    """The same fleet the stack serves, for computing what the answers must be."""
    return Fleet(cloud.config.fleet)


@pytest.fixture
def download_dir(tmp_path: Path) -> Path:
    return tmp_path
