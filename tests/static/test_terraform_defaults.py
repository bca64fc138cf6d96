"""The Terraform variables' defaults are the Python defaults.

tests/deploy applies a deployment with its own stack name, region and tuning, so a default there
cannot stand in for a variable; these tests check the defaults themselves against the code: the
tuning against meterflow/localcloud/stack.py (ExportTuning, LakeTuning, BridgeTuning, stack_spec), the runtime
settings each variable documents as "(MF_...)" against the settings classes.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from meterflow.hes.settings import HesSettings
from meterflow.lake.settings import LakeSettings
from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning, stack_spec
from tests.static.support import TERRAFORM_DIR, labelled, unquote
from tests.support.terraform import tuning_variables

# LakeTuning fields are the Terraform variables of the same names, but for this one: the export
# workflow's finalize_timeout_seconds already has that name (as in tests/deploy/conftest.py).
DOCUMENTED_SETTING = re.compile(r"\((?P<variable>MF_[A-Z_]+)\)")
NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# The variables HesSettings and LakeSettings require: any value, for reading their defaults.
PLACEHOLDERS = dict.fromkeys((*HesSettings.required_env(), *LakeSettings.required_env()), "placeholder")


def terraform_defaults() -> dict[str, Any]:
    return {name: unquote(spec.get("default")) for name, spec in labelled(TERRAFORM_DIR, "variable").items()}


def _comparable(value: Any) -> Any:
    """Numbers by value (HCL 0.1 and Python "0.1", 15 and "15.0"); other values as they are."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and NUMBER_TEXT.fullmatch(value)):
        return float(value)
    return value


def python_tuning() -> dict[str, int]:
    return tuning_variables(ExportTuning(), LakeTuning(), BridgeTuning())


def test_tuning_defaults_are_stack_py_defaults() -> None:
    # GIVEN the tuning dataclasses of meterflow/localcloud/stack.py, whose fields are Terraform variables
    tuning = python_tuning()
    # WHEN reading the defaults of the variables of the same names
    defaults = terraform_defaults()
    missing = sorted(set(tuning) - set(defaults))
    # THEN every field is a variable, with the same default
    assert len(tuning) >= 20
    assert missing == []
    assert {name: defaults[name] for name in tuning} == tuning


def test_stack_name_and_region_defaults_are_stack_spec_defaults() -> None:
    # GIVEN stack_spec()'s defaults
    parameters = inspect.signature(stack_spec).parameters
    # WHEN reading the root variables' defaults
    defaults = terraform_defaults()
    # THEN a default deployment is stack_spec()'s default stack
    assert (defaults["stack_name"], defaults["region"]) == (
        parameters["stack_name"].default,
        parameters["region"].default,
    )


def test_runtime_setting_defaults_are_the_settings_defaults() -> None:
    # GIVEN every variable whose description names the runtime setting it becomes, "(MF_...)"
    documented = {}
    for name, spec in labelled(TERRAFORM_DIR, "variable").items():
        match = DOCUMENTED_SETTING.search(str(unquote(spec.get("description", ""))))
        if match:
            documented[name] = match.group("variable")
    assert len(documented) >= 15
    # WHEN comparing each default with what the settings classes use when the variable is unset
    python = {**HesSettings.from_env(PLACEHOLDERS).to_env(), **LakeSettings.from_env(PLACEHOLDERS).to_env()}
    defaults = terraform_defaults()
    differences = {
        name: (defaults[name], python.get(setting))
        for name, setting in documented.items()
        if _comparable(defaults[name]) != _comparable(python.get(setting))
    }
    # THEN they are the same (null: the setting is left unset)
    assert differences == {}


@pytest.mark.parametrize(
    ("terraform", "python", "equal"),
    [
        (0.1, "0.1", True),
        (15, "15.0", True),
        (20230227, "20230227", True),
        (1, "1.5", False),
        (None, None, True),
    ],
)
def test_defaults_compare_numbers_by_value(terraform: Any, python: Any, equal: bool) -> None:
    assert (_comparable(terraform) == _comparable(python)) is equal


def test_the_query_api_stops_athena_before_its_function_times_out() -> None:
    # GIVEN the API function's timeout (the functions module) and the query API's wait for Athena
    functions = labelled(TERRAFORM_DIR / "modules" / "functions", "variable")
    api_timeout = float(unquote(functions["api_timeout_seconds"]["default"]))
    wait = LakeSettings.from_env(PLACEHOLDERS).query_timeout_seconds
    # WHEN comparing them THEN the wait ends, and the query is stopped, with time to answer 504
    assert wait + 2 <= api_timeout
    assert float(terraform_defaults()["query_timeout_seconds"]) == wait
