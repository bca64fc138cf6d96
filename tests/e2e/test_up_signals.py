"""`meterflow up` stops cleanly on Ctrl-C (SIGINT to the terminal's process group) and on SIGTERM:
supervisors, then workers, then servers, one line each, no traceback, nothing left running, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from meterflow.localcloud.net import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
METERFLOW = Path(sys.executable).with_name("meterflow")
STOP_BOUND_SECONDS = 15  # measured: about 3 s, interpreter exit included, on a busy 2-core machine
COMPONENTS = [
    "scheduler",
    "worker host (8 queues, 11 processes",  # every queue the app serves; 2 each for export, lake, late reads
    "API",
    "SFTP server",
    "site bridge",
    "MQTT broker",
    "moto server",
]


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [
        pytest.param(signal.SIGINT, True, id="ctrl-c-to-the-process-group"),
        pytest.param(signal.SIGTERM, False, id="sigterm-to-the-parent"),
        pytest.param(signal.SIGTERM, True, id="sigterm-to-the-process-group"),
    ],
)
def test_up_stops_cleanly(signum: signal.Signals, to_group: bool, tmp_path: Path) -> None:
    # GIVEN `meterflow up` on free ports, in its own process group as a terminal would start it
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    command = [str(METERFLOW), "up", "--api-port", str(free_port()), "--sftp-port", str(free_port())]
    command += ["--moto-port", str(free_port()), "--mqtt-port", "0", "--meters", "100"]
    command += ["--state-dir", str(tmp_path / "state")]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MF_", "AWS_", "MOTO_"))}
    with stdout.open("w") as out, stderr.open("w") as err:
        up = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while "Press Ctrl-C to stop." not in stdout.read_text():
            assert up.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "not up after 300 s"
            time.sleep(0.2)
        assert "Meterflow local cloud is up." in stdout.read_text()
        descendants = psutil.Process(up.pid).children(recursive=True)
        assert len(descendants) >= 11  # ten workers, mosquitto or not, the resource tracker

        # WHEN the signal arrives (Ctrl-C: the terminal sends SIGINT to every process of the group)
        sent = time.monotonic()
        if to_group:
            os.killpg(up.pid, signum)
        else:
            up.send_signal(signum)
        returncode = up.wait(STOP_BOUND_SECONDS)
        stopped_after = time.monotonic() - sent
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

    # THEN it exits 0 within the bound
    output, errors = stdout.read_text(), stderr.read_text()
    assert returncode == 0, errors
    assert stopped_after < STOP_BOUND_SECONDS
    # AND nothing printed a traceback (no KeyboardInterrupt in a worker), no worker was restarted
    assert "Traceback" not in output + errors, errors
    assert "KeyboardInterrupt" not in output + errors
    assert "restarting" not in errors
    # AND it reported one stop line per component, supervisors first, then workers, then servers
    reported = output.split(f"{signal.Signals(signum).name}: stopping...", 1)[1].splitlines()
    stop_lines = [line.strip() for line in reported if line.strip().startswith("stopped ")]
    assert len(stop_lines) == len(COMPONENTS), output
    for line, component in zip(stop_lines, COMPONENTS, strict=True):
        assert line.startswith(f"stopped {component}"), output
    assert "could not stop" not in output
    # AND no process it started outlives it
    _gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert not alive, [(process.pid, process.name()) for process in alive]
    print(
        f"{signal.Signals(signum).name} {'group' if to_group else 'parent'}: exited in {stopped_after:.1f} s"
    )
