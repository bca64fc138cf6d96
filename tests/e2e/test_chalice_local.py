"""`chalice local --stage local` serves the same API as the local cloud, from the stage
`meterflow chalice-config` writes (here into a copy of the Chalice project, not the committed one)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from meterflow.core.timeutil import format_hes_time
from meterflow.localcloud.local_cloud import (
    LocalCloud,
    chalice_stage,
    chalice_stage_environment,
    write_chalice_stage,
)
from meterflow.localcloud.net import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).with_name("chalice")


@pytest.fixture
def chalice_local(cloud: LocalCloud, tmp_path: Path) -> Iterator[str]:
    """`chalice local --stage local` (with its reloader, as a developer runs it) on a copy of chalice_app."""
    project = tmp_path / "chalice_app"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy(REPO / "chalice_app" / "app.py", project / "app.py")
    shutil.copy(REPO / "chalice_app" / ".chalice" / "config.json", project / ".chalice" / "config.json")
    stage = chalice_stage_environment(cloud.runtime_env, project)
    # the committed stage has the same variables; only this stack's values differ. Against an
    # external cloud (LocalStack) the credentials are the caller's and stay out of the stage.
    committed = chalice_stage(REPO / "chalice_app" / ".chalice" / "config.json").keys()
    credentials = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert stage.keys() == (committed if cloud.embedded else committed - credentials)
    write_chalice_stage(project / ".chalice" / "config.json", stage)
    # nothing from this process's environment but an external cloud's credentials: the stage must be enough
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MF_", "AWS_", "MOTO_"))}
    if not cloud.embedded:
        env.update({key: os.environ[key] for key in credentials if key in os.environ})
    port = free_port()
    log = (tmp_path / "chalice-local.log").open("w+")
    process = subprocess.Popen(
        [str(CHALICE), "local", "--stage", "local", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its reloader runs the server in a child: stop both
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(url, timeout=5)  # any answer: it listens
                break
            except requests.ConnectionError:
                log.seek(0)
                assert process.poll() is None and time.monotonic() < deadline, log.read()
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        log.close()


def test_chalice_local_serves_the_clouds_api(cloud: LocalCloud, chalice_local: str) -> None:
    # GIVEN `chalice local --stage local` next to the running local cloud
    params = {"start_date": format_hes_time(cloud.config.fleet.start), "page_size": "5"}
    # WHEN reading meter readings and a lake query through it
    readings = requests.get(f"{chalice_local}/readings", params=params, timeout=60)
    stats = requests.get(f"{chalice_local}/lake/queries/lake_stats", timeout=120)
    # THEN both answer 200, as the cloud's own API does, with the same answers
    assert readings.status_code == 200, readings.text
    assert stats.status_code == 200, stats.text
    assert readings.json() == requests.get(f"{cloud.api_url}/readings", params=params, timeout=60).json()
    assert stats.json() == requests.get(f"{cloud.api_url}/lake/queries/lake_stats", timeout=120).json()
    assert len(readings.json()["records"]) == 5
