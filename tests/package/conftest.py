"""Fixtures of the Lambda artifact tests: the image's interpreter and the artifact, built once per
session as `make package` builds it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.package.support import builder

_artifacts: list[Any] = []


@pytest.fixture(scope="session")
def lambda_python() -> str:
    """The image's interpreter (CPython 3.12): required under CI, else the tests are skipped."""
    try:
        python = builder.find_lambda_python()
    except builder.BuildError as error:
        pytest.fail(str(error))
    if python is None:
        message = (
            f"no Python {builder.PYTHON_VERSION} (set {builder.LAMBDA_PYTHON_ENV}; "
            f"tried {builder.lambda_python_candidates()})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(python)


@pytest.fixture(scope="session")
def artifact(lambda_python: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """build/lambda as `make package` builds it (pip's wheel cache makes later runs quicker)."""
    root = tmp_path_factory.mktemp("lambda") / "task-root"
    built = builder.build(root, builder.DEFAULT_LOCK, lambda_python)
    _artifacts.append(built)
    return built


@pytest.fixture(scope="session")
def probe_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME of the probed functions: empty, so no ~/.aws of this machine is read."""
    return tmp_path_factory.mktemp("lambda-home")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for built in _artifacts:
        terminalreporter.write_sep("-", "Lambda image task root (tests/package)")
        terminalreporter.write_line(built.summary())
