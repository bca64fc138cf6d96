"""The settings mechanism (meterflow/core/settings.py): one class per feature, one prefix each, the
shared variables named once; from_env reads the environment, keyword arguments never do."""

from __future__ import annotations

from datetime import datetime

import pytest

from meterflow.bridge.settings import BridgeSettings
from meterflow.core.errors import InvalidInput
from meterflow.core.settings import FeatureSettings, InvalidSettings, MissingSettings
from meterflow.hes.domain.fleet import EventRates, FleetConfig
from meterflow.hes.settings import HesSettings
from meterflow.lake.settings import LakeSettings

FEATURES: tuple[type[FeatureSettings], ...] = (HesSettings, LakeSettings, BridgeSettings)
PREFIXES = {HesSettings: "MF_HES_", LakeSettings: "MF_LAKE_", BridgeSettings: "MF_BRIDGE_"}
SHARED = {"AWS_REGION", "MF_HEARTBEAT_INTERVAL_SECONDS", "MF_INBOUND_BUCKET", "MF_FIXED_NOW"}


def required(settings: type[FeatureSettings], **extra: str) -> dict[str, str]:
    return dict.fromkeys(settings.required_env(), "x") | extra


@pytest.mark.parametrize("settings", FEATURES)
def test_every_variable_has_its_features_prefix_or_is_shared(settings: type[FeatureSettings]) -> None:
    names = settings.env_names().values()
    assert {name for name in names if not name.startswith(PREFIXES[settings])} <= SHARED


def test_a_shared_variable_has_one_name_in_every_feature() -> None:
    # GIVEN the variables every feature reads, and those two share
    assert {cls.env_name("region") for cls in FEATURES} == {"AWS_REGION"}
    assert {cls.env_name("heartbeat_interval_seconds") for cls in FEATURES} == {
        "MF_HEARTBEAT_INTERVAL_SECONDS"
    }
    assert LakeSettings.env_name("inbound_bucket") == BridgeSettings.env_name("inbound_bucket")
    assert HesSettings.env_name("fixed_now") == LakeSettings.env_name("fixed_now") == "MF_FIXED_NOW"
    # WHEN one environment sets them THEN every feature reads the same values
    env = (
        required(HesSettings)
        | required(LakeSettings)
        | required(BridgeSettings)
        | {"AWS_DEFAULT_REGION": "eu-west-1", "MF_HEARTBEAT_INTERVAL_SECONDS": "2.5"}
    )
    loaded = [cls.from_env(env) for cls in FEATURES]
    assert {(item.region, item.heartbeat_interval_seconds) for item in loaded} == {("eu-west-1", 2.5)}


def test_a_field_is_read_from_its_one_variable_only() -> None:
    # GIVEN the prefix and field name of fields whose variable is another (shared or unrepeated)
    env = required(LakeSettings) | {
        "MF_LAKE_REGION": "nowhere",
        "MF_LAKE_INBOUND_BUCKET": "wrong",
        "MF_LAKE_LAKE_FILES_TABLE": "wrong",
        "MF_LAKE_HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    # WHEN reading THEN they are ignored
    settings = LakeSettings.from_env(env)
    assert (settings.region, settings.inbound_bucket, settings.lake_files_table) == ("us-east-1", "x", "x")
    assert settings.heartbeat_interval_seconds == 15.0


def test_names_match_case_insensitively_and_values_are_typed() -> None:
    env = required(LakeSettings) | {"mf_lake_max_ranges": "7", "MF_LAKE_QUERY_ENGINE": "athena"}
    settings = LakeSettings.from_env(env)
    assert (settings.max_ranges, settings.query_engine) == (7, "athena")


def test_invalid_values_name_every_variable() -> None:
    env = required(LakeSettings) | {"MF_LAKE_QUERY_ENGINE": "sqlite", "MF_LAKE_MAX_RANGES": "many"}
    with pytest.raises(InvalidSettings) as raised:
        LakeSettings.from_env(env)
    assert set(raised.value.problems) == {"MF_LAKE_QUERY_ENGINE", "MF_LAKE_MAX_RANGES"}
    assert "'sqlite'" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_fleet_the_simulator_refuses_is_invalid_settings() -> None:
    with pytest.raises(InvalidSettings, match="interval_minutes must divide a day"):
        HesSettings.from_env(required(HesSettings, MF_HES_FLEET_INTERVAL_MINUTES="7"))


def test_times_are_hes_times_and_an_empty_fixed_now_is_the_wall_clock() -> None:
    env = required(HesSettings, MF_HES_FLEET_START="2024-02-03", MF_FIXED_NOW="")
    settings = HesSettings.from_env(env)
    assert settings.fleet.start == datetime(2024, 2, 3)
    assert settings.fixed_now is None
    with pytest.raises(InvalidInput, match="MF_FIXED_NOW"):
        HesSettings.from_env(env | {"MF_FIXED_NOW": "yesterday"})


def test_an_empty_required_variable_is_missing_an_empty_optional_one_is_empty() -> None:
    with pytest.raises(MissingSettings) as raised:
        BridgeSettings.from_env(required(BridgeSettings, MF_BRIDGE_JOBS_TABLE=""))
    assert raised.value.missing == ("MF_BRIDGE_JOBS_TABLE",)
    settings = BridgeSettings.from_env(required(BridgeSettings, MF_BRIDGE_IOT_DATA_ENDPOINT=""))
    assert settings.iot_data_endpoint == ""


@pytest.mark.parametrize("settings", FEATURES)
def test_to_env_is_the_inverse_of_from_env(settings: type[FeatureSettings]) -> None:
    env = required(settings, MF_FIXED_NOW="2023-03-01 12:00:00.000000")
    loaded = settings.from_env(env)
    assert settings.from_env(loaded.to_env()) == loaded


def test_the_fleet_is_derived_from_its_fields_and_back() -> None:
    fleet = FleetConfig(meter_count=5, interval_minutes=30, seed=7, rates=EventRates(late_fraction=0.5))
    settings = HesSettings(
        file_requests_table="t",
        file_requests_queue_url="q",
        export_jobs_queue_url="q",
        exports_bucket="b",
        export_state_machine_arn="a",
        **HesSettings.fleet_fields(fleet),
    )
    assert settings.fleet == fleet
    assert HesSettings.from_env(settings.to_env()).fleet == fleet


def test_keyword_arguments_never_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a process whose environment sets a lake variable
    monkeypatch.setenv("MF_LAKE_MAX_RANGES", "3")
    # WHEN building settings from keyword arguments THEN the default stands
    settings = LakeSettings(
        inbound_bucket="i",
        integrated_bucket="i",
        lake_jobs_queue_url="q",
        integrations_table="t",
        lake_files_table="t",
        lake_ingest_state_machine_arn="a",
        input_adapter_state_machine_arn="a",
        alerts_topic_arn="a",
    )
    assert settings.max_ranges == 150
    # AND from_env, without a mapping, reads the process's environment
    for name, value in required(LakeSettings).items():
        monkeypatch.setenv(name, value)
    assert LakeSettings.from_env().max_ranges == 3
