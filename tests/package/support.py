"""What the Lambda artifact tests share (importable, unlike conftest): the build script, what Terraform
says the functions run with, and the import probe."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_lambda_artifact.py"
FUNCTIONS_TF = REPO_ROOT / "terraform" / "modules" / "functions" / "main.tf"
ROOT_LOCALS_TF = REPO_ROOT / "terraform" / "locals.tf"
ROOT_VARIABLES_TF = REPO_ROOT / "terraform" / "variables.tf"
PROBE = Path(__file__).resolve().parent / "handler_probe.py"

# What a deployed function sees besides Terraform's variables (the Lambda runtime sets these).
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
STACK = "meterflow"


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda_artifact", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


builder = _load_build_script()


# ------------------------------------------------------------------------------------- Terraform
def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def terraform_handlers() -> dict[str, str]:
    """``local.functions`` of terraform/modules/functions: function key -> handler."""
    with FUNCTIONS_TF.open() as file:
        body = hcl2.load(file)
    for block in body.get("locals", []):
        if "functions" in block:
            return {key: _unquote(spec["handler"]) for key, spec in block["functions"].items()}
    raise AssertionError(f"no locals.functions in {FUNCTIONS_TF}")


def _variable_defaults() -> dict[str, Any]:
    with ROOT_VARIABLES_TF.open() as file:
        body = hcl2.load(file)
    return {
        _unquote(name): spec.get("default")
        for block in body.get("variable", [])
        for name, spec in block.items()
    }


ENVIRONMENT_ENTRY = re.compile(r"\b([A-Z][A-Z0-9_]*)\s*=\s*([^,{}]+?)\s*(?=[,}])")
VARIABLE_REFERENCE = re.compile(r"^(?:tostring\()?var\.(\w+)\)?$")


def terraform_environment_expressions() -> dict[str, str]:
    """``local.lambda_environment`` of terraform/locals.tf: variable name -> its HCL expression."""
    with ROOT_LOCALS_TF.open() as file:
        body = hcl2.load(file)
    for block in body.get("locals", []):
        if "lambda_environment" in block:
            return dict(ENVIRONMENT_ENTRY.findall(str(block["lambda_environment"])))
    raise AssertionError(f"no locals.lambda_environment in {ROOT_LOCALS_TF}")


def _terraform_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_unquote(value))


def _plausible(name: str, expression: str, defaults: Mapping[str, Any]) -> str | None:
    """A value like the deployed one: the variable's default, the literal, or a name of its kind."""
    if reference := VARIABLE_REFERENCE.match(expression):
        return _terraform_string(defaults.get(reference.group(1)))
    if expression.startswith('"'):
        return str(_unquote(expression))
    slug = name.removeprefix("MF_").lower().replace("_", "-")
    for suffix in ("-queue-url", "-queue-name", "-state-machine-arn", "-topic-arn", "-table", "-bucket"):
        slug = slug.removesuffix(suffix)
    if name.endswith("_QUEUE_URL"):
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{STACK}-{slug}"
    if name.endswith("_STATE_MACHINE_ARN"):
        return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{STACK}-{slug}"
    if name.endswith("_TOPIC_ARN"):
        return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{STACK}-{slug}"
    if name.endswith("_ENDPOINT"):
        return f"a1b2c3d4e5f6g7-ats.iot.{REGION}.amazonaws.com"
    if name == "MF_LAKE_GLUE_DATABASE":
        return f"{STACK}_lake"
    return f"{STACK}-{slug}"


def lambda_environment(function: str, handler: str, task_root: Path, home: Path) -> dict[str, str]:
    """The environment of a deployed function: Terraform's variables and the runtime's, no endpoint
    override (AWS_ENDPOINT_URL) and nothing inherited from this process."""
    defaults = _variable_defaults()
    environment = {
        name: value
        for name, expression in terraform_environment_expressions().items()
        if (value := _plausible(name, expression, defaults)) is not None
    }
    return environment | {
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),  # no ~/.aws of this machine
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_Image",
        "AWS_LAMBDA_FUNCTION_NAME": f"{STACK}-{function.replace('_', '-')}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
        "AWS_SECRET_ACCESS_KEY": "example-secret-access-key",
        "AWS_SESSION_TOKEN": "example-session-token",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_HANDLER": handler,
    }


# ---------------------------------------------------------------------------------- the probe
@dataclass(frozen=True)
class ProbeResult:
    handler: str
    returncode: int
    outcome: dict[str, Any]
    stderr: str

    @property
    def error(self) -> str | None:
        error = self.outcome.get("error")
        return str(error) if error is not None else None


def probe_handler(
    python: str, task_root: Path, function: str, handler: str, home: Path, timeout: float = 300
) -> ProbeResult:
    """Import ``handler`` from ``task_root`` in a fresh isolated interpreter, as Lambda would."""
    result = subprocess.run(
        [python, "-I", "-S", "-B", str(PROBE), str(task_root), handler],
        env=lambda_environment(function, handler, task_root, home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    try:
        outcome = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        outcome = {}
    if not outcome:
        outcome = {"error": f"the probe printed no outcome (exit {result.returncode})"}
    return ProbeResult(handler, result.returncode, outcome, result.stderr)
