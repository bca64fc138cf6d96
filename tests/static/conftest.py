"""Fixtures of the static Terraform tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.static.support import REPO_ROOT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
