"""terraform fmt, init (offline from the provider mirror when there is one) and validate.

The root module and every module under terraform/modules are validated on their own, so a module
that only validates in the context of the root is caught. Under CI=true a missing terraform binary
fails these tests instead of skipping them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.terraform import TERRAFORM_DIR, Terraform, module_dirs, terraform_binary


def test_terraform_is_formatted() -> None:
    completed = subprocess.run(
        [terraform_binary(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{completed.stdout}"


@pytest.mark.parametrize(
    "module",
    [path.relative_to(TERRAFORM_DIR).as_posix() for path in module_dirs()],
    ids=lambda name: "root" if name == "." else name,
)
def test_module_validates(tmp_path: Path, module: str) -> None:
    # GIVEN a copy of the configuration, initialised without a backend (only the aws provider)
    terraform = Terraform.copy_of(tmp_path, "" if module == "." else module)
    terraform.init()
    providers = {
        path.parent.name for path in (terraform.module_dir / ".terraform" / "providers").glob("*/*/*/*")
    }
    assert providers == {"aws"}, f"providers other than aws: {providers}"
    # WHEN it is validated THEN it is valid
    completed = terraform.run("validate", "-no-color", "-json", check=False)
    assert completed.returncode == 0, completed.stdout
