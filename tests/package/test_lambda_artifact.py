"""The Lambda image's task root (`make package`, scripts/build_lambda_artifact.py) holds everything the
functions import, for the image's interpreter, and nothing the cloud does not need.

Each handler that Terraform deploys (terraform/modules/functions, local.functions) is imported in its
own CPython 3.12 with nothing but the task root and the standard library on sys.path, in the
environment Terraform gives the functions (terraform/locals.tf, local.lambda_environment), without
network access. The build takes about a minute the first time (wheels from PyPI), less once pip has
cached them.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.package.support import (
    builder,
    probe_handler,
    terraform_environment_expressions,
    terraform_handlers,
)

MB = builder.MB
HANDLERS = terraform_handlers()
# Packages of the local cloud, the on-premises worker and the tests: the image must not carry them.
LOCAL_ONLY = {
    "moto",
    "duckdb",
    "amqtt",
    "psutil",
    "localstack_client",
    "paho",
    "sqlalchemy",
    "psycopg",
    "psycopg_binary",
    "pandas",
    "pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "hcl2",
}


def _failure(result: Any) -> str:
    outcome = result.outcome
    return (
        f"{result.handler}: {outcome.get('error')}\n{outcome.get('traceback', '')}\n{result.stderr[-3000:]}"
    )


def test_terraform_declares_the_handlers() -> None:
    # GIVEN the functions Terraform deploys
    # THEN each runs a function of app.py, the task root's module, and the API is among them
    assert HANDLERS["api"] == "app.app"
    assert all(handler.startswith("app.") for handler in HANDLERS.values()), HANDLERS


def test_terraform_sets_the_functions_environment() -> None:
    # The probe's environment is Terraform's: the names are read from terraform/locals.tf.
    names = set(terraform_environment_expressions())
    assert {
        "MF_HES_STACK_NAME",
        "MF_LAKE_QUERY_ENGINE",
        "MF_BRIDGE_SITE_PUBLISH",
        "MF_LAKE_SCHEDULER_RATE_MINUTES",
    } <= names
    assert "AWS_ENDPOINT_URL" not in names


def test_artifact_fits_the_container_image_limit_and_the_budget(artifact: Any) -> None:
    # GIVEN the task root, unzipped, as it is copied into the image
    total = artifact.total_bytes
    print(artifact.summary())
    # THEN with the base image it stays under Lambda's 10 GB limit for a container image (uncompressed,
    # all layers); a zip package would be limited to 250 MB unzipped, which numpy and pyarrow exceed.
    assert total + builder.BASE_IMAGE_ALLOWANCE_BYTES < builder.CONTAINER_IMAGE_LIMIT_BYTES
    # AND under the project's budget, so that a new heavy dependency is a decision, not an accident
    assert total < builder.PROJECT_BUDGET_BYTES, artifact.summary(10)
    builder.check_limits(artifact)


def test_artifact_holds_the_app_at_the_root_and_only_runtime_packages(artifact: Any) -> None:
    root: Path = artifact.root
    # app.py at the task root (handler "app.<function>"), the project's packages beside it
    assert (root / "app.py").is_file()
    for package in builder.PACKAGES:
        assert (root / package / "__init__.py").is_file()
    # bytecode for the image's interpreter, so cold starts do not compile
    assert (root / "__pycache__" / "app.cpython-312.pyc").is_file()
    assert (root / "pyarrow" / "__pycache__").is_dir()
    # nothing of the local cloud, the on-premises worker or the tests
    entries = {builder.distribution_of(entry.name).replace("-", "_") for entry in root.iterdir()}
    assert entries & LOCAL_ONLY == set()
    # the wheels are for the Lambda runtime (CPython 3.12, Linux x86_64), not for this machine
    assert list(root.glob("pyarrow/lib.cpython-312-x86_64-linux-gnu.so"))


def test_lambda_can_read_every_file(artifact: Any) -> None:
    # Lambda runs the image as a user that owns none of the files: they must be world-readable.
    unreadable = []
    for path in [artifact.root, *artifact.root.rglob("*")]:
        mode = path.lstat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            unreadable.append(str(path.relative_to(artifact.root)))
    assert unreadable == []


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_every_terraform_handler_imports_in_the_lambda_interpreter(
    function: str, artifact: Any, lambda_python: str, probe_home: Path
) -> None:
    # GIVEN a function's handler, as Terraform declares it
    handler = HANDLERS[function]
    # WHEN a CPython 3.12 imports it with only the task root and the standard library on sys.path
    result = probe_handler(lambda_python, artifact.root, function, handler, probe_home)
    # THEN it resolves to a callable, from the task root alone, without any network call
    outcome = result.outcome
    assert result.error is None, _failure(result)
    assert outcome["callable"] is True, outcome
    assert outcome["sys_path_outside_stdlib"] == []
    assert outcome["foreign_modules"] == [], "imported from outside the task root and the stdlib"
    assert outcome["network_attempts"] == []
    assert set(outcome["third_party"]) & LOCAL_ONLY == set()


def test_the_import_check_reports_a_missing_dependency(
    artifact: Any, lambda_python: str, probe_home: Path, tmp_path: Path
) -> None:
    # GIVEN the task root without pyarrow (a symlink farm of everything else)
    missing = [entry.name for entry in artifact.root.iterdir() if entry.name.startswith("pyarrow")]
    assert missing
    broken = builder.without(artifact.root, missing, tmp_path / "task-root")
    # WHEN the API's handler is imported from it
    result = probe_handler(lambda_python, broken, "api", HANDLERS["api"], probe_home)
    # THEN the check fails and says what is missing
    assert result.error == "ModuleNotFoundError: No module named 'pyarrow'", _failure(result)
    assert "callable" not in result.outcome


def test_the_build_fails_loudly_when_a_locked_wheel_does_not_match(tmp_path: Path) -> None:
    # GIVEN a lock whose hash matches no wheel of the pinned release
    lock = tmp_path / "bad.lock"
    lock.write_text(f"six==1.17.0 --hash=sha256:{'0' * 64}\n")
    # WHEN the artifact is built from it, as `make package` would
    status = builder.main(["--lock", str(lock), "--output", str(tmp_path / "out"), "--no-bytecode"])
    # THEN the build exits non-zero
    assert status == 1


def test_the_import_check_reports_network_calls(lambda_python: str, probe_home: Path, tmp_path: Path) -> None:
    # GIVEN a handler module that resolves a name when imported
    (tmp_path / "app.py").write_text(
        "import socket\ntry:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError:\n    pass\n"
        "def app(event, context):\n    return None\n"
    )
    # WHEN it is probed
    result = probe_handler(lambda_python, tmp_path, "api", "app.app", probe_home)
    # THEN the attempt is reported even though the module swallowed the error
    assert result.outcome["callable"] is True
    assert result.outcome["network_attempts"] == ["getaddrinfo('example.com', 443)"]
