"""Settings fail at start-up naming every missing variable; the committed `local` Chalice stage is
the default `meterflow up` stack's; `meterflow chalice-config` rewrites only that stage."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meterflow.bridge.settings import BridgeSettings
from meterflow.core.settings import MissingSettings, check_settings
from meterflow.hes.settings import HesSettings
from meterflow.lake.settings import LakeSettings
from meterflow.localcloud import cli
from meterflow.localcloud.local_cloud import (
    CLOUD_ENV_FILE,
    CloudNotRunning,
    LocalCloud,
    chalice_stage,
    chalice_stage_environment,
    read_cloud_env,
    write_chalice_stage,
)
from meterflow.localcloud.mqtt_broker import MqttClientOptions

REPO = Path(__file__).resolve().parents[3]
CHALICE_PROJECT = REPO / "chalice_app"
CHALICE_CONFIG = CHALICE_PROJECT / ".chalice" / "config.json"
LOADERS = (HesSettings.from_env, LakeSettings.from_env, BridgeSettings.from_env)


def committed_local_stage() -> dict[str, str]:
    return chalice_stage(CHALICE_CONFIG, "local")


@pytest.fixture(autouse=True)
def no_external_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """`meterflow up` uses the cloud AWS_ENDPOINT_URL names; a local cloud started earlier in the
    session (the e2e suite's) leaves it set in this process."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def default_up_environment() -> dict[str, str]:
    """What `meterflow up` (every option at its default, run from the repository root) gives its API."""
    parser = argparse.ArgumentParser()
    cli._add_cloud_options(parser)
    cloud = LocalCloud(cli._cloud_config(parser.parse_args([])))
    cloud.spec = cloud.stack_spec_for("123456789012")  # moto's account
    queue_urls = {
        key: cloud.spec.queue_url(key, cloud.endpoint_url)
        for key in ("file_requests", "export_jobs", "lake_jobs")
    }
    # the broker's port and the bridge's certificates under <state dir>/mqtt/pki (LocalPki's layout)
    pki = REPO / ".meterflow" / "mqtt" / "pki"
    assert cloud.config.mqtt_port is not None
    bridge = MqttClientOptions(
        host="127.0.0.1",
        port=cloud.config.mqtt_port,
        ca_path=pki / "ca.crt",
        cert_path=pki / "clients" / "meterflow-bridge.crt",
        key_path=pki / "clients" / "meterflow-bridge.key",
        client_id="meterflow-bridge",
    )
    return cloud.runtime_environment(queue_urls, bridge)


# -- one message naming every missing variable --------------------------------------------------------


def test_every_missing_variable_is_named_at_once() -> None:
    # GIVEN the default stack's settings without two variables of different loaders
    env = committed_local_stage()
    del env["MF_INBOUND_BUCKET"], env["MF_HES_EXPORTS_BUCKET"]
    # WHEN checking every loader
    with pytest.raises(MissingSettings) as raised:
        check_settings(*LOADERS, env=env)
    # THEN one error names both, each once (MF_INBOUND_BUCKET is needed by the lake and the bridge)
    assert raised.value.missing == ("MF_HES_EXPORTS_BUCKET", "MF_INBOUND_BUCKET")
    assert "MF_HES_EXPORTS_BUCKET, MF_INBOUND_BUCKET" in str(raised.value)


def test_an_empty_variable_counts_as_missing_and_a_loader_names_all_of_its_own() -> None:
    env = committed_local_stage() | {"MF_LAKE_FILES_TABLE": ""}
    del env["MF_LAKE_ALERTS_TOPIC_ARN"]
    with pytest.raises(MissingSettings) as raised:
        LakeSettings.from_env(env)
    assert raised.value.missing == ("MF_LAKE_FILES_TABLE", "MF_LAKE_ALERTS_TOPIC_ARN")


def test_the_mqtt_transport_needs_the_bridge_certificate_iot_data_does_not() -> None:
    env = committed_local_stage()
    del env["MF_BRIDGE_MQTT_CERT"]
    with pytest.raises(MissingSettings) as raised:
        BridgeSettings.from_env(env)
    assert raised.value.missing == ("MF_BRIDGE_MQTT_CERT",)
    assert BridgeSettings.from_env(env | {"MF_BRIDGE_SITE_PUBLISH": "iot-data"}).site_publish == "iot-data"


def test_an_invalid_value_still_raises_as_its_loader_says() -> None:
    with pytest.raises(ValueError, match="MF_LAKE_QUERY_ENGINE"):
        check_settings(*LOADERS, env=committed_local_stage() | {"MF_LAKE_QUERY_ENGINE": "sqlite"})


# -- the committed `local` stage ------------------------------------------------------------------------


def test_the_committed_local_stage_is_the_default_up_stack() -> None:
    # GIVEN the environment `meterflow up` gives its API with every option at its default
    wanted = chalice_stage_environment(default_up_environment(), CHALICE_PROJECT)
    # THEN the committed `local` stage holds exactly it (paths relative to chalice_app/)
    assert committed_local_stage() == wanted
    assert wanted["MF_BRIDGE_MQTT_CA"] == "../.meterflow/mqtt/pki/ca.crt"
    assert "MF_LOG_LEVEL" not in wanted
    # AND it satisfies every loader the app checks at start-up
    check_settings(*LOADERS, env=wanted)


def test_the_prod_stage_stays_without_local_settings() -> None:
    config = json.loads(CHALICE_CONFIG.read_text())
    assert "environment_variables" not in config["stages"]["prod"]
    assert "environment_variables" not in config


def test_writing_a_stage_changes_only_that_stage(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(CHALICE_CONFIG.read_text())
    original = json.loads(config.read_text())
    changed = committed_local_stage() | {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}

    assert write_chalice_stage(config, changed)
    assert not write_chalice_stage(config, changed)  # already so: the file is not rewritten

    rewritten = json.loads(config.read_text())
    assert rewritten["stages"]["local"]["environment_variables"] == changed
    rewritten["stages"]["local"]["environment_variables"] = original["stages"]["local"][
        "environment_variables"
    ]
    assert rewritten == original


def test_writing_the_committed_stage_reproduces_the_committed_file_byte_for_byte(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(CHALICE_CONFIG.read_text().replace('"AWS_REGION": "us-east-1"', '"AWS_REGION": "x"'))
    assert write_chalice_stage(config, committed_local_stage())
    assert config.read_text() == CHALICE_CONFIG.read_text()


# -- meterflow chalice-config ----------------------------------------------------------------------------


def test_chalice_config_writes_the_running_clouds_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a running cloud (this process) that wrote its settings, with another endpoint and absolute paths
    state = tmp_path / "state"
    state.mkdir()
    environment = default_up_environment() | {"AWS_ENDPOINT_URL": "http://127.0.0.1:5999"}
    (state / CLOUD_ENV_FILE).write_text(json.dumps({"pid": os.getpid(), "environment": environment}))
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    config = project / ".chalice" / "config.json"
    config.write_text(CHALICE_CONFIG.read_text())
    args = ["chalice-config", "--state-dir", str(state), "--config", str(config)]
    # WHEN checking, then writing
    assert cli.main([*args, "--check"]) == 1
    assert "AWS_ENDPOINT_URL" in capsys.readouterr().out
    assert cli.main(args) == 0
    # THEN the stage holds them, paths relative to that project directory
    stage = chalice_stage(config)
    assert stage["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert stage["MF_BRIDGE_MQTT_CA"] == os.path.relpath(REPO / ".meterflow/mqtt/pki/ca.crt", project)
    assert cli.main([*args, "--check"]) == 0


def test_chalice_config_without_a_running_cloud_says_so(tmp_path: Path) -> None:
    with pytest.raises(CloudNotRunning):
        read_cloud_env(tmp_path)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / CLOUD_ENV_FILE).write_text(json.dumps({"pid": int(gone.stdout), "environment": {}}))
    with pytest.raises(CloudNotRunning, match="gone"):
        read_cloud_env(tmp_path)
    assert cli.main(["chalice-config", "--state-dir", str(tmp_path)]) == 2
