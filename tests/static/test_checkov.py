"""checkov finds no failed check in terraform/, and every skip is inline with a reason.

checkov is not in .venv (its pins clash with the project's); `make test` installs it into
.venv-checkov and passes its path in $CHECKOV. Locally the checkov tests skip when it is missing;
in CI (environment variable CI set) they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.static.support import REPO_ROOT, TERRAFORM_DIR

CHECKOV_VERSION = "3.3.30"
# Offline and deterministic: no external modules, no platform policies, no upload.
CHECKOV_ARGS = (
    "--framework", "terraform",
    "--quiet",
    "--compact",
    "--download-external-modules", "false",
    "--skip-download",
    "-o", "json",
)  # fmt: skip
INLINE_SKIP = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?$")
ANY_SKIP = re.compile(r"(checkov|bridgecrew):skip", re.IGNORECASE)
MIN_REASON_LENGTH = 40


def find_checkov() -> Path | None:
    """$CHECKOV (set by `make test`), then .venv-checkov, then checkov on PATH."""
    candidates = [
        os.environ.get("CHECKOV"),
        str(REPO_ROOT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def run_checkov(checkov: Path, directory: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [str(checkov), "-d", str(directory), *CHECKOV_ARGS],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    # checkov exits 1 when a check fails: the report says which, so read it either way.
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        pytest.fail(f"checkov did not run (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    (terraform,) = [item for item in reports if item.get("check_type") == "terraform"]
    return dict(terraform)


@pytest.fixture(scope="module")
def checkov() -> Path:
    found = find_checkov()
    if found is None:
        message = (
            f"checkov {CHECKOV_VERSION} is not installed: `make test` installs it into .venv-checkov "
            f"(python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov=={CHECKOV_VERSION})"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def checkov_report(checkov: Path) -> dict[str, Any]:
    return run_checkov(checkov, TERRAFORM_DIR)


@pytest.fixture(scope="module")
def inline_skips() -> list[tuple[str, int, str]]:
    """(file, line number, line) of every skip annotation in terraform/."""
    found: list[tuple[str, int, str]] = []
    for path in sorted(TERRAFORM_DIR.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if ANY_SKIP.search(line):
                found.append((str(path.relative_to(REPO_ROOT)), number, line.strip()))
    return found


def test_checkov_is_the_pinned_version(checkov: Path) -> None:
    # GIVEN the checkov the tests found
    # WHEN asking its version
    version = subprocess.run([str(checkov), "--version"], capture_output=True, text=True, check=True).stdout
    # THEN it is the version the Makefile pins (skips were reviewed against its checks)
    assert version.strip() == CHECKOV_VERSION


def test_checkov_reports_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    # GIVEN checkov's report on terraform/
    summary = checkov_report["summary"]
    failed = checkov_report["results"]["failed_checks"]
    # WHEN reading its summary
    findings = [
        f"{item['check_id']} {item['resource']} ({item['file_path']}): {item['check_name']}"
        for item in failed
    ]
    # THEN it scanned the stack, parsed every file and nothing failed
    assert summary["resource_count"] > 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert findings == []
    assert summary["failed"] == 0


def test_checkov_skips_are_the_inline_ones(
    checkov_report: dict[str, Any], inline_skips: list[tuple[str, int, str]]
) -> None:
    # GIVEN the inline skip annotations in terraform/
    # WHEN comparing their number with the skips checkov applied
    skipped = checkov_report["summary"]["skipped"]
    # THEN every skip checkov applied comes from an annotation (each applies to one resource block)
    assert skipped == len(inline_skips)


def test_every_skip_is_inline_with_a_reason(inline_skips: list[tuple[str, int, str]]) -> None:
    # GIVEN every skip annotation in terraform/
    # WHEN parsing each as #checkov:skip=<CHECK_ID>:<reason>
    malformed = []
    for file, number, line in inline_skips:
        match = INLINE_SKIP.search(line)
        reason = (match.group("reason") or "").strip() if match else ""
        if (
            not match
            or not re.fullmatch(r"CKV2?_AWS_\d+", match.group("check"))
            or len(reason) < MIN_REASON_LENGTH
        ):
            malformed.append(f"{file}:{number}: {line}")
    # THEN each names one AWS check and says why it does not apply
    assert malformed == []


def test_no_skips_outside_the_terraform(repo_root: Path) -> None:
    # GIVEN the places where checkov reads configuration
    config_files = [repo_root / name for name in (".checkov.yaml", ".checkov.yml")]
    config_files += [TERRAFORM_DIR / name for name in (".checkov.yaml", ".checkov.yml")]
    # WHEN looking for configuration files that could skip checks wholesale
    present = [str(path) for path in config_files if path.exists()]
    # THEN there are none: skips are inline, next to the resource they concern
    assert present == []
