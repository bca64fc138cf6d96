"""Running the real Terraform binary in tests: offline from a provider mirror when one exists.

The shipped configuration (``terraform/``) never changes for a test. A test works on a copy of
``terraform/`` and ``state_machines/`` (the templates sit at ``${path.root}/../state_machines``),
and what only the test needs, such as the provider override that points the aws provider at a
local moto server, is written into that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
STATE_MACHINE_DIR = REPO_ROOT / "state_machines"
AWS_PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
# Where a filesystem mirror of the aws provider is found without configuration (this machine's is
# /opt/tf-plugins); MF_TERRAFORM_PROVIDER_MIRROR names another.
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
)
# Every service the stack uses: the provider override sends each to the moto server.
PROVIDER_SERVICES = (
    "apigateway",
    "athena",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ecr",
    "events",
    "glue",
    "iam",
    "iot",
    "kms",
    "lambda",
    "s3",
    "secretsmanager",
    "sfn",
    "sns",
    "sqs",
    "sts",
    "transfer",
)


# ExportTuning's, LakeTuning's and BridgeTuning's fields are the root variables of the same names,
# but for this one: the export workflow's finalize_timeout_seconds already has that name.
LAKE_VARIABLE_NAMES = {"finalize_timeout_seconds": "lake_finalize_timeout_seconds"}


def tuning_variables(tuning: ExportTuning, lake: LakeTuning, bridge: BridgeTuning) -> dict[str, Any]:
    """The root variables that set this tuning."""
    lake_variables = {LAKE_VARIABLE_NAMES.get(name, name): value for name, value in asdict(lake).items()}
    return {**asdict(tuning), **lake_variables, **asdict(bridge)}


def terraform_binary() -> str:
    """The terraform binary; a skip where it is missing, a failure under CI=true."""
    binary = os.environ.get("MF_TERRAFORM", "terraform")
    found = shutil.which(binary)
    if found is None:
        message = f"terraform binary {binary!r} not found on PATH (set MF_TERRAFORM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def provider_mirror() -> Path | None:
    """A filesystem mirror holding hashicorp/aws, or None (then init uses the registry)."""
    configured = os.environ.get("MF_TERRAFORM_PROVIDER_MIRROR")
    for candidate in ([Path(configured)] if configured else []) + list(MIRROR_CANDIDATES):
        if (candidate / AWS_PROVIDER).is_dir():
            return candidate
    return None


def plugin_cache() -> Path:
    """One provider cache for every working copy: init links the ~700 MB provider, not copies it."""
    cache = Path(
        os.environ.get(
            "MF_TERRAFORM_PLUGIN_CACHE", Path.home() / ".cache" / "meterflow" / "terraform-plugins"
        )
    )
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def cli_config(directory: Path) -> Path:
    """A Terraform CLI configuration: hashicorp providers from the mirror when there is one."""
    mirror = provider_mirror()
    path = directory / "terraformrc"
    # No lock file is committed (one from a mirror would list this platform's hashes only), so the
    # cache may be used without one.
    cache = f'plugin_cache_dir = "{plugin_cache()}"\nplugin_cache_may_break_dependency_lock_file = true\n'
    if mirror is None:
        path.write_text(cache)
    else:
        path.write_text(
            cache + "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
        )
    return path


def moto_provider_override(endpoint_url: str, region: str) -> str:
    """The aws provider, pointed at a moto server: every endpoint, no credential or account checks."""
    endpoints = "\n".join(f'    {service} = "{endpoint_url}"' for service in PROVIDER_SERVICES)
    return (
        'provider "aws" {\n'
        f'  region                      = "{region}"\n'
        '  access_key                  = "meterflow-local"\n'
        '  secret_key                  = "meterflow-local"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_region_validation      = true\n"
        "  s3_use_path_style           = true\n\n"
        f"  endpoints {{\n{endpoints}\n  }}\n}}\n"
    )


@dataclass
class Terraform:
    """One working copy of the configuration, and the commands run in it."""

    workdir: Path
    module_dir: Path
    environment: Mapping[str, str]

    @classmethod
    def copy_of(cls, root: Path, module: str = "") -> Terraform:
        """A copy of terraform/ and state_machines/ under ``root``; ``module`` picks a submodule."""
        shutil.copytree(
            TERRAFORM_DIR, root / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*")
        )
        shutil.copytree(STATE_MACHINE_DIR, root / "state_machines")
        (root / "cli").mkdir()
        environment = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config(root / "cli")),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        module_dir = root / "terraform" / module if module else root / "terraform"
        return cls(root, module_dir, environment)

    def run(
        self, *arguments: str, check: bool = True, timeout: float = 1_200
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [terraform_binary(), f"-chdir={self.module_dir}", *arguments],
            env=dict(self.environment),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(arguments)} exited {completed.returncode}\n"
                f"{completed.stdout[-6000:]}\n{completed.stderr[-6000:]}"
            )
        return completed

    def init(self) -> None:
        self.run("init", "-backend=false", "-input=false", "-no-color")

    def write(self, name: str, text: str) -> None:
        (self.module_dir / name).write_text(text)

    def set_variables(self, variables: Mapping[str, Any]) -> None:
        """Root variables for every later command (an auto-loaded tfvars file in the copy)."""
        self.write("test.auto.tfvars.json", json.dumps(dict(variables), indent=2))

    def apply(self, targets: Iterable[str] = (), parallelism: int = 20) -> subprocess.CompletedProcess[str]:
        arguments = ["apply", "-auto-approve", "-input=false", "-no-color", f"-parallelism={parallelism}"]
        return self.run(*arguments, *(f"-target={target}" for target in targets))

    def plan_changes(self) -> tuple[int, str]:
        """``plan -detailed-exitcode``: 0 = no changes, 2 = changes; and the plan's text."""
        completed = self.run("plan", "-detailed-exitcode", "-input=false", "-no-color", check=False)
        if completed.returncode not in {0, 2}:
            raise AssertionError(
                f"terraform plan failed\n{completed.stdout[-6000:]}\n{completed.stderr[-6000:]}"
            )
        return completed.returncode, completed.stdout

    def destroy(self) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", "-auto-approve", "-input=false", "-no-color", "-parallelism=20")

    def state(self) -> dict[str, Any]:
        """``terraform show -json`` of the current state."""
        shown: dict[str, Any] = json.loads(self.run("show", "-json").stdout)
        return shown

    def plan_to_file(self, name: str = "stack.tfplan") -> int:
        """``plan -out``: the number of managed resources the saved plan will change."""
        self.run("plan", "-input=false", "-no-color", f"-out={name}")
        plan = json.loads(self.run("show", "-json", name).stdout)
        return sum(1 for change in plan["resource_changes"] if change["mode"] == "managed")

    def apply_plan(
        self, name: str = "stack.tfplan", parallelism: int = 20
    ) -> subprocess.CompletedProcess[str]:
        """Apply exactly the saved plan (as `terraform plan -out` + `terraform apply <plan>` does)."""
        return self.run("apply", "-input=false", "-no-color", f"-parallelism={parallelism}", name)


def managed_resources(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every managed resource instance in a ``show -json`` state, modules included."""
    found: list[dict[str, Any]] = []

    def walk(module: Mapping[str, Any]) -> None:
        found.extend(item for item in module.get("resources", []) if item["mode"] == "managed")
        for child in module.get("child_modules", []):
            walk(child)

    walk(state.get("values", {}).get("root_module", {}))
    return found


def module_dirs() -> Sequence[Path]:
    """The root module and every module under terraform/modules."""
    return [TERRAFORM_DIR, *sorted(path for path in (TERRAFORM_DIR / "modules").iterdir() if path.is_dir())]
