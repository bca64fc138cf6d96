"""The Terraform parses, is documented and pinned, and its defaults pass its own checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.static.support import TERRAFORM_DIR, ModelFactory
from tests.static.tfmodel import ModuleSource, TerraformModel, load_hcl, unquote

TF_FILES = sorted(path for path in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in path.parts)
MODULE_DIRS = sorted(path for path in (TERRAFORM_DIR / "modules").iterdir() if path.is_dir())
ALL_MODULE_DIRS = [TERRAFORM_DIR, *MODULE_DIRS]
ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "locals.tf", "README.md")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf")


def _relative(path: Path) -> str:
    return str(path.relative_to(TERRAFORM_DIR)) or "."


def _required_providers(source: ModuleSource) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    for block in source.terraform:
        for required in block.get("required_providers", []):
            providers.update({key: value for key, value in required.items() if key != "__is_block__"})
    return providers


def _provider_of(resource_type: str) -> str:
    return resource_type.split("_", 1)[0]


def test_terraform_tree_has_root_files_and_modules() -> None:
    # GIVEN the terraform/ directory
    # WHEN listing it
    present = {path.name for path in TERRAFORM_DIR.iterdir()}
    # THEN the root files exist and there are modules (so the parametrized tests are not vacuous)
    assert set(ROOT_FILES) <= present
    assert len(MODULE_DIRS) >= 6
    assert len(TF_FILES) >= 5 + 3 * len(MODULE_DIRS)


@pytest.mark.parametrize("path", TF_FILES, ids=_relative)
def test_tf_file_parses_with_python_hcl2(path: Path) -> None:
    # GIVEN a .tf file
    # WHEN parsing it with python-hcl2
    parsed = load_hcl(path)
    # THEN it yields at least one top-level block
    assert parsed, f"{path} is empty"


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
    variables = ModuleSource.load(module_dir).variables
    # WHEN looking for the type and description of each
    undocumented = [
        name
        for name, spec in variables.items()
        if "type" not in spec or not unquote(str(spec.get("description", ""))).strip()
    ]
    # THEN none lacks either
    assert variables, f"{module_dir} declares no variables"
    assert undocumented == []


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_every_output_has_a_description(module_dir: Path) -> None:
    # GIVEN a module's outputs
    outputs = ModuleSource.load(module_dir).outputs
    # WHEN looking for their descriptions
    undocumented = [
        name for name, spec in outputs.items() if not unquote(str(spec.get("description", ""))).strip()
    ]
    # THEN every output is described
    assert outputs, f"{module_dir} declares no outputs"
    assert undocumented == []


def test_root_pins_terraform_and_provider_versions() -> None:
    # GIVEN the root module's terraform block
    source = ModuleSource.load(TERRAFORM_DIR)
    required_version = unquote(str(source.terraform[0].get("required_version", "")))
    # WHEN reading its version constraints
    providers = _required_providers(source)
    # THEN Terraform >= 1.5 and the AWS provider 5.x and tls 4.x are pinned with their sources
    assert re.search(r">=\s*1\.5", required_version), required_version
    assert unquote(providers["aws"]["source"]) == "hashicorp/aws"
    assert re.fullmatch(r"~> 5\.\d+", unquote(providers["aws"]["version"]))
    assert unquote(providers["tls"]["source"]) == "hashicorp/tls"
    assert re.fullmatch(r"~> 4\.\d+", unquote(providers["tls"]["version"]))


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_module_requires_every_provider_it_uses(module_dir: Path) -> None:
    # GIVEN a module's resources and data sources
    source = ModuleSource.load(module_dir)
    used = {_provider_of(type_name) for type_name, _, _ in [*source.resources, *source.data]}
    # WHEN reading its required_providers
    required = set(_required_providers(source))
    # THEN each provider it uses is required with a version constraint
    assert used <= required, f"{module_dir} uses {sorted(used - required)} without requiring them"
    for name in required:
        assert "version" in _required_providers(source)[name], f"{module_dir}: {name} has no version"


def test_every_resource_is_understood_by_the_model(default_model: TerraformModel) -> None:
    # GIVEN the model of the stack with default variables
    resources = default_model.resources()
    # WHEN evaluating every attribute and block of every resource instance
    evaluated = [instance.evaluated() for instance in resources]
    # THEN nothing is outside the expression subset the drift tests rely on
    assert len(evaluated) >= 40


def test_default_variables_pass_validations_and_preconditions(default_model: TerraformModel) -> None:
    # GIVEN the stack with default variables
    modules = default_model.modules()
    # WHEN evaluating every variable validation (with the values modules receive) and precondition
    failures = [failure for module in modules for failure in module.validation_failures()]
    failures += [failure for module in modules for failure in module.precondition_failures()]
    # THEN none fails
    assert failures == []


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(
            {"stack_name": "a-stack-name-that-is-far-too-long-for-s3"}, "root: var.stack_name", id="name"
        ),
        pytest.param({"chunk_timeout_seconds": 901}, "root: var.chunk_timeout_seconds", id="lambda-limit"),
        pytest.param({"fixed_now": "yesterday"}, "root: var.fixed_now", id="hes-time"),
        pytest.param(
            {"chunk_heartbeat_seconds": 600},
            "module.workflows.aws_sfn_state_machine.this",
            id="heartbeat-precondition",
        ),
        pytest.param(
            {"stage_timeout_seconds": 901}, "root: var.stage_timeout_seconds", id="lake-lambda-limit"
        ),
        pytest.param(
            {"compact_heartbeat_seconds": 900},
            "module.workflows.aws_sfn_state_machine.lake_ingest",
            id="lake-heartbeat-precondition",
        ),
        pytest.param(
            {"transfer_heartbeat_seconds": 10},
            "module.workflows.aws_sfn_state_machine.input_adapter",
            id="worker-heartbeat-precondition",
        ),
        pytest.param(
            {"athena_bytes_scanned_cutoff_per_query": 1024},
            "root: var.athena_bytes_scanned_cutoff_per_query",
            id="athena-cutoff",
        ),
        pytest.param({"alert_email_addresses": ["ops"]}, "root: var.alert_email_addresses", id="email"),
        pytest.param(
            {"site_heartbeat_seconds": 3600},
            "module.workflows.aws_sfn_state_machine.historian_backfill",
            id="site-heartbeat-precondition",
        ),
        pytest.param(
            {"site_timeout_seconds": 14400, "site_max_attempts": 2},
            "module.workflows.aws_sfn_state_machine.historian_backfill",
            id="site-upload-url-lifetime",
        ),
        pytest.param({"site_max_attempts": 6}, "root: var.site_max_attempts", id="site-attempts"),
        pytest.param({"site_timeout_seconds": 86400}, "root: var.site_timeout_seconds", id="site-timeout"),
    ],
)
def test_invalid_settings_are_rejected(
    model_factory: ModelFactory, terraform_dir: Path, variables: dict[str, Any], expected: str
) -> None:
    # GIVEN a variable value Terraform must refuse
    model = model_factory(terraform_dir, variables)
    # WHEN evaluating validations and preconditions
    modules = model.modules()
    failures = [failure for module in modules for failure in module.validation_failures()]
    failures += [failure for module in modules for failure in module.precondition_failures()]
    # THEN the refusal names the variable or resource
    assert any(failure.startswith(expected) for failure in failures), failures


REFERENCE = re.compile(
    r"(?<![\w.\"/-])(?:(?P<data>data)\.(?P<data_type>\w+)\.(?P<data_name>[\w-]+)"
    r"|(?P<type>(?:aws|tls)_\w+)\.(?P<name>[\w-]+)"
    r"|module\.(?P<module>\w+)\.(?P<output>\w+)"
    r"|var\.(?P<var>\w+)"
    r"|local\.(?P<local>\w+))"
)


def _code_without_comments(path: Path) -> str:
    return "\n".join(re.sub(r"^\s*(#|//).*$", "", line) for line in path.read_text().splitlines())


def _is_declared(match: re.Match[str], source: ModuleSource) -> bool:
    if match.group("data"):
        return (match.group("data_type"), match.group("data_name")) in {(t, n) for t, n, _ in source.data}
    if match.group("type"):
        return (match.group("type"), match.group("name")) in {(t, n) for t, n, _ in source.resources}
    if match.group("module"):
        call = source.module_calls.get(match.group("module"))
        if call is None:
            return False
        child = ModuleSource.load((source.directory / unquote(str(call["source"]))).resolve())
        return match.group("output") in child.outputs
    if match.group("var"):
        return match.group("var") in source.variables
    return match.group("local") in source.locals


def unresolved_references(module_dir: Path) -> list[str]:
    """References `terraform validate` would reject: undeclared resources, variables, locals, outputs."""
    source = ModuleSource.load(module_dir)
    return [
        f"{path.name}: {match.group()}"
        for path in sorted(module_dir.glob("*.tf"))
        for match in REFERENCE.finditer(_code_without_comments(path))
        if not _is_declared(match, source)
    ]


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=_relative)
def test_every_reference_resolves(module_dir: Path) -> None:
    # GIVEN a module's code (comments aside)
    # WHEN resolving each reference to a resource, data source, variable, local or module output
    problems = unresolved_references(module_dir)
    # THEN each names something the module declares (what `terraform validate` checks first)
    assert problems == []


def test_reference_check_finds_a_typo(tmp_path: Path) -> None:
    # GIVEN a module that refers to an undeclared resource, variable and local
    (tmp_path / "main.tf").write_text(
        'resource "aws_sqs_queue" "this" {\n'
        "  name   = var.nmae\n"
        "  policy = aws_iam_role.missing.arn\n"
        "  tags   = local.absent\n"
        "}\n"
    )
    # WHEN resolving its references
    problems = unresolved_references(tmp_path)
    # THEN all three are reported
    assert problems == ["main.tf: var.nmae", "main.tf: aws_iam_role.missing", "main.tf: local.absent"]


def test_every_output_and_data_source_is_understood_by_the_model(default_model: TerraformModel) -> None:
    # GIVEN every module instance of the stack
    modules = default_model.modules()
    # WHEN evaluating each module's outputs and data sources
    evaluated = [module.output(name) for module in modules for name in module.source.outputs]
    evaluated += [instance.evaluated() for module in modules for instance in module.data_sources()]
    # THEN the model understands all of them (no unsupported syntax, no missing attribute)
    assert len(evaluated) > 0
