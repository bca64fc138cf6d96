"""One local cloud per test session, driven over HTTP, SFTP and boto3 like a user would.

The cloud is the embedded moto server unless ``AWS_ENDPOINT_URL`` names another (LocalStack), so
this same suite is the LocalStack end-to-end suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.domain.fleet import Fleet
from meterflow.runtime.hes_client import HesClient
from meterflow.runtime.local_cloud import LocalCloud, LocalCloudConfig
from meterflow.stack import ExportTuning

# Short heartbeats so a killed worker is detected in seconds, not the production minute.
E2E_TUNING = ExportTuning(chunk_heartbeat_seconds=4, finalize_heartbeat_seconds=4, chunk_timeout_seconds=120)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state_dir = tmp_path_factory.mktemp("meterflow-state")
    config = LocalCloudConfig(
        state_dir=state_dir,
        tuning=E2E_TUNING,
        heartbeat_interval_seconds=1.0,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        stack_name="meterflow-e2e",
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
