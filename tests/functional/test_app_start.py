"""chalice_app/app.py refuses to start without its settings, naming every missing one; `chalice package`,
which imports it only to read its routes, still can (each case imports the app in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from meterflow.localcloud.local_cloud import chalice_stage

REPO = Path(__file__).resolve().parents[2]
CHALICE_PROJECT = REPO / "chalice_app"


def base_env() -> dict[str, str]:
    """This process's environment without any setting of a stack."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("MF_", "AWS_"))}


def import_app(env: Mapping[str, str], code: str = "import app") -> subprocess.CompletedProcess[str]:
    # as Lambda and `chalice local` do: the Chalice project directory first on the path, "app" imported
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(CHALICE_PROJECT)!r})\n{code}"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CHALICE_PROJECT,
    )


def test_the_app_starts_with_the_local_stage_and_fails_naming_a_missing_variable() -> None:
    stage = chalice_stage(CHALICE_PROJECT / ".chalice" / "config.json", "local")
    # GIVEN the local stage's settings WHEN importing the app THEN it starts
    started = import_app(base_env() | stage)
    assert started.returncode == 0, started.stderr
    # GIVEN the same without MF_INBOUND_BUCKET and MF_HES_FILE_REQUESTS_TABLE
    partial = {
        key: value
        for key, value in stage.items()
        if key not in ("MF_INBOUND_BUCKET", "MF_HES_FILE_REQUESTS_TABLE")
    }
    # WHEN importing the app THEN the import fails, naming exactly those two
    failed = import_app(base_env() | partial)
    assert failed.returncode != 0
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "meterflow.core.settings.MissingSettings: 2 environment variable(s) not set: "
    )
    assert "MF_HES_FILE_REQUESTS_TABLE, MF_INBOUND_BUCKET." in last_line


def test_chalice_package_can_still_read_the_routes_without_settings() -> None:
    # GIVEN no settings at all, inside a Chalice CLI command other than `local` (as `chalice package`)
    inspect = (
        "import click, chalice.cli\n"
        "with click.Context(click.Command('package')):\n"
        "    import app\n"
        "print(sorted(app.app.routes))"
    )
    # WHEN importing the app THEN it imports and lists its routes
    inspected = import_app(base_env(), inspect)
    assert inspected.returncode == 0, inspected.stderr
    assert "/readings" in inspected.stdout
    # AND under `chalice local` the same import fails at once
    serving = import_app(base_env(), inspect.replace("'package'", "'local'"))
    assert serving.returncode != 0
    assert "MF_INBOUND_BUCKET" in serving.stderr
