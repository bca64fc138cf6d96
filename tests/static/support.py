"""Paths and the python-hcl2 reading shared by the static tests (importable, unlike conftest).

The static tests read what only the source shows (layout, documentation, pins, defaults); what the
configuration means is left to the real Terraform (tests/static/test_terraform_validate.py and
tests/deploy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
MODULE_DIRS = sorted(path for path in (TERRAFORM_DIR / "modules").iterdir() if path.is_dir())
ALL_MODULE_DIRS = [TERRAFORM_DIR, *MODULE_DIRS]

_BLOCK = "__is_block__"
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=True)


@cache
def load_hcl(path: Path) -> dict[str, Any]:
    """A parsed .tf file (cached: python-hcl2 is slow, and the tests only read the result)."""
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=_OPTIONS))


def unquote(value: Any) -> Any:
    """A string literal as python-hcl2 serializes it ('"text"') -> text; other values unchanged."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(module_dir: Path, kind: str) -> Iterator[Mapping[str, Any]]:
    """Every top-level block of ``kind`` (variable, output, terraform, resource...) of a module."""
    for path in sorted(module_dir.glob("*.tf")):
        yield from load_hcl(path).get(kind, [])


def labelled(module_dir: Path, kind: str) -> dict[str, Mapping[str, Any]]:
    """Blocks with one label (variable "x", output "x") by label."""
    found: dict[str, Mapping[str, Any]] = {}
    for block in blocks(module_dir, kind):
        for label, body in block.items():
            if label != _BLOCK:
                found[unquote(label)] = body
    return found


def required_providers(module_dir: Path) -> dict[str, Mapping[str, Any]]:
    """Provider name -> {source, version} of a module's terraform blocks (values unquoted)."""
    providers: dict[str, Mapping[str, Any]] = {}
    for block in blocks(module_dir, "terraform"):
        for required in block.get("required_providers", []):
            for name, spec in required.items():
                if name != _BLOCK:
                    providers[name] = {key: unquote(value) for key, value in spec.items()}
    return providers
