"""Paths and model construction shared by the static tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.static.tfmodel import TerraformModel

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"

ModelFactory = Callable[..., TerraformModel]


def build_model(
    terraform_dir: Path,
    variables: Mapping[str, Any] | None = None,
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> TerraformModel:
    """A model of ``terraform_dir`` for the given root variables, in the given account and region."""
    known = {
        "data.aws_caller_identity.current.account_id": account_id,
        "data.aws_region.current.name": region,
        "data.aws_partition.current.partition": "aws",
    }
    return TerraformModel(terraform_dir, variables=variables, known=known)
