"""What only the source of terraform/ shows: its layout, documented variables and outputs, pins.

What the configuration means is checked by the real Terraform: ``fmt``, ``init`` and ``validate``
in test_terraform_validate.py (which also parse every file and resolve every reference), and
``apply`` against moto in tests/deploy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.static.support import (
    ALL_MODULE_DIRS,
    MODULE_DIRS,
    TERRAFORM_DIR,
    blocks,
    labelled,
    required_providers,
    unquote,
)

TF_FILES = sorted(path for path in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in path.parts)
ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "locals.tf", "README.md")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf")


def _relative(path: Path) -> str:
    return str(path.relative_to(TERRAFORM_DIR)) or "."


def test_terraform_tree_has_root_files_and_modules() -> None:
    # GIVEN the terraform/ directory
    # WHEN listing it
    present = {path.name for path in TERRAFORM_DIR.iterdir()}
    # THEN the root files exist and there are modules (so the parametrized tests are not vacuous)
    assert set(ROOT_FILES) <= present
    assert len(MODULE_DIRS) >= 6
    assert len(TF_FILES) >= 5 + 3 * len(MODULE_DIRS)


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_relative)
def test_module_has_main_variables_and_outputs(module_dir: Path) -> None:
    # GIVEN a module directory
    # WHEN listing its files
    present = {path.name for path in module_dir.iterdir()}
    # THEN it follows the terraform-aws-modules layout
    assert set(MODULE_FILES) <= present


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_every_variable_has_a_type_and_a_description(module_dir: Path) -> None:
    # GIVEN a module's variables
    variables = labelled(module_dir, "variable")
    # WHEN looking for the type and description of each
    undocumented = [
        name
        for name, spec in variables.items()
        if "type" not in spec or not str(unquote(spec.get("description", ""))).strip()
    ]
    # THEN none lacks either
    assert variables, f"{module_dir} declares no variables"
    assert undocumented == []


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_every_output_has_a_description(module_dir: Path) -> None:
    # GIVEN a module's outputs
    outputs = labelled(module_dir, "output")
    # WHEN looking for their descriptions
    undocumented = [
        name for name, spec in outputs.items() if not str(unquote(spec.get("description", ""))).strip()
    ]
    # THEN every output is described
    assert outputs, f"{module_dir} declares no outputs"
    assert undocumented == []


def test_root_pins_terraform_and_the_aws_provider() -> None:
    # GIVEN the root module's terraform block
    (terraform,) = blocks(TERRAFORM_DIR, "terraform")
    required_version = str(unquote(terraform.get("required_version", "")))
    # WHEN reading its version constraints
    providers = required_providers(TERRAFORM_DIR)
    # THEN Terraform >= 1.5 and the AWS provider 5.x, the only provider, are pinned with its source
    assert re.search(r">=\s*1\.5", required_version), required_version
    assert set(providers) == {"aws"}
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> 5\.\d+", str(providers["aws"]["version"]))


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_module_requires_every_provider_it_uses(module_dir: Path) -> None:
    # GIVEN a module's resources and data sources
    used = {
        str(unquote(type_label)).split("_", 1)[0]
        for kind in ("resource", "data")
        for block in blocks(module_dir, kind)
        for type_label in block
        if type_label != "__is_block__"
    }
    # WHEN reading its required_providers
    required = required_providers(module_dir)
    # THEN each provider it uses is required, with a version constraint
    assert used, f"{module_dir} uses no provider"
    assert used <= set(required), f"{module_dir} uses {sorted(used - set(required))} without requiring them"
    assert [name for name, spec in required.items() if "version" not in spec] == []
