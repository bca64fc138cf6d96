"""The dependency rules ([tool.importlinter] in pyproject.toml), checked by import-linter.

The repository keeps every contract; a copy of it with one forbidden import breaks exactly the
contract that forbids it, so the contracts are known to bite (an import-linter contract that names
a module wrongly, or ignores too much, would pass everything). `lint-imports` needs no cache here:
it reads the four packages in well under a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.static.support import REPO_ROOT

PACKAGES = ("meterflow", "workers", "chalice_app", "onprem_worker")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS: dict[str, str] = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    def contracts(self, status: str) -> set[str]:
        """Ids of the contracts reported with ``status`` (KEPT or BROKEN)."""
        lines = self.output.splitlines()
        return {
            contract_id
            for contract_id, name in CONTRACTS.items()
            if any(line.startswith(f"{name} {status}") for line in lines)
        }


def lint_imports(root: Path) -> LintResult:
    """`lint-imports` over the packages and pyproject.toml under ``root``, imported from there."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "1000", "NO_COLOR": "1"}
    completed = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return LintResult(completed.returncode, completed.stdout + completed.stderr)


def copy_repository(destination: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package,
            destination / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", ".chalice"),
        )
    shutil.copy2(REPO_ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_every_contract_has_an_id_and_a_name() -> None:
    assert len(CONTRACTS) >= 5
    assert all(CONTRACTS.values())


def test_the_repository_keeps_every_contract() -> None:
    # GIVEN the repository as it is
    # WHEN import-linter checks it against pyproject.toml's contracts
    result = lint_imports(REPO_ROOT)
    # THEN it passes, every contract reported kept
    assert result.returncode == 0, result.output
    assert result.contracts("KEPT") == set(CONTRACTS), result.output
    assert result.contracts("BROKEN") == set()


@dataclass(frozen=True)
class Violation:
    module: str  # a file, relative to the repository root
    line: str  # appended to it
    breaks: frozenset[str]  # contract ids


VIOLATIONS = {
    "domain-imports-boto3": Violation(
        "meterflow/hes/domain/fleet.py", "import boto3", frozenset({"pure-domain"})
    ),
    "worker-imports-localcloud": Violation(
        "workers/hes.py",
        "from meterflow.localcloud import stack",
        frozenset({"lambda-ships-no-local", "platform-layers"}),
    ),
    "lake-imports-hes-internals": Violation(
        "meterflow/lake/domain/topology.py",
        "from meterflow.hes.domain.fleet import FleetConfig",
        frozenset({"hes-internals"}),
    ),
    "domain-imports-its-settings": Violation(
        "meterflow/hes/domain/readings.py",
        "from meterflow.hes.settings import HesSettings",
        frozenset({"feature-layers"}),
    ),
    "hes-imports-bridge-internals": Violation(
        "meterflow/hes/domain/services.py",
        "from meterflow.bridge.ports import JobRepository",
        frozenset({"bridge-internals"}),
    ),
    "adapter-imports-the-local-query-engine": Violation(
        "meterflow/lake/adapters/athena_engine.py",
        "from meterflow.lake.adapters import duckdb_engine",
        frozenset({"duckdb-engine-via-switch"}),
    ),
    "onprem-imports-meterflow": Violation(
        "onprem_worker/contracts.py", "from meterflow.core import errors", frozenset({"onprem-standalone"})
    ),
}


@pytest.mark.parametrize("violation", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, violation: Violation) -> None:
    # GIVEN a copy of the repository with one forbidden import appended to one module
    root = copy_repository(tmp_path)
    target = root / violation.module
    target.write_text(f"{target.read_text()}\n{violation.line}\n")
    # WHEN import-linter checks the copy
    result = lint_imports(root)
    # THEN it fails, naming the contract(s) that forbid the import and the import itself
    assert result.returncode != 0, result.output
    assert result.contracts("BROKEN") == violation.breaks, result.output
    assert result.contracts("KEPT") == set(CONTRACTS) - violation.breaks, result.output
    importer = violation.module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> " in result.output, result.output
