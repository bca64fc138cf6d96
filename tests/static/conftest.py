"""Fixtures of the static Terraform tests: where the Terraform is and a model of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.static.support import REPO_ROOT, TERRAFORM_DIR, ModelFactory, build_model
from tests.static.tfmodel import TerraformModel


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def terraform_dir() -> Path:
    return TERRAFORM_DIR


@pytest.fixture(scope="session")
def default_model(terraform_dir: Path) -> TerraformModel:
    """The root module with every variable at its default, in account 123456789012."""
    return build_model(terraform_dir)


@pytest.fixture(scope="session")
def model_factory() -> ModelFactory:
    return build_model
