"""Build ``build/lambda/``: the task root of the Lambda container image, exactly as it ships.

The image (``lambda.Dockerfile``) is the AWS Lambda Python 3.12 base image plus this folder, copied
to ``${LAMBDA_TASK_ROOT}``; nothing is installed in the Dockerfile, so what ships is what
``tests/package`` imported. The folder holds:

* the locked runtime dependencies (``requirements/lambda.lock``, hashes required, wheels only) for
  CPython 3.12 on manylinux x86_64, whatever the machine that builds it;
* ``app.py`` (``chalice_app/app.py``) at the root, as the handlers ``app.<function>`` expect;
* the project's packages that it imports: ``meterflow``, ``workers``, ``onprem_worker`` (its
  ``contracts`` are the bridge's message schema) and ``chalice_app`` (the features' Blueprints,
  ``chalice_app.chalicelib``; not its ``.chalice`` configuration);
* their bytecode, compiled by a CPython 3.12 (the task root is read-only in Lambda, so without it
  every cold start compiles botocore, numpy and pyarrow again: about 2 s instead of 5-7 s to import
  ``app`` here). The interpreter is ``--lambda-python``, else ``$MF_LAMBDA_PYTHON``, else
  ``python3.12`` on PATH, else pyenv's; ``--no-bytecode`` skips the step.

``make package`` runs this script; ``tests/package`` imports it. It exits non-zero when any wheel
cannot be installed or the folder outgrows the project's budget.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOCK = REPO_ROOT / "requirements" / "lambda.lock"
DEFAULT_OUTPUT = REPO_ROOT / "build" / "lambda"
APP_SOURCE = Path("chalice_app") / "app.py"  # relative to the repository root
PACKAGES = ("meterflow", "workers", "onprem_worker", "chalice_app")
# Only Python sources and typing markers go in: no Dockerfiles, READMEs or caches.
PACKAGE_FILE_SUFFIXES = (".py", ".typed")

# The target of the image: the Lambda base image's interpreter and architecture.
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")

MB = 1_000_000
# AWS Lambda's limit for a container image: 10 GB uncompressed, all layers included; 1 GB of it is
# set aside for the base image's layers (well under that). Zip packages would be limited to 50 MB
# zipped / 250 MB unzipped, which numpy and pyarrow alone exceed.
CONTAINER_IMAGE_LIMIT_BYTES = 10_000 * MB
BASE_IMAGE_ALLOWANCE_BYTES = 1_000 * MB
# The project's own budget for the task root, far below the limit, so that bloat is noticed.
PROJECT_BUDGET_BYTES = 600 * MB

LAMBDA_PYTHON_ENV = "MF_LAMBDA_PYTHON"


class BuildError(Exception):
    """The artifact could not be built as locked."""


@dataclass(frozen=True)
class Artifact:
    root: Path
    total_bytes: int
    sizes: tuple[tuple[str, int], ...]  # top-level distributions and packages, largest first

    def top(self, count: int = 5) -> tuple[tuple[str, int], ...]:
        return self.sizes[:count]

    def summary(self, count: int = 5) -> str:
        lines = [f"{self.root}: {self.total_bytes / MB:.1f} MB unzipped"]
        lines += [f"  {name:<24} {size / MB:8.1f} MB" for name, size in self.top(count)]
        return "\n".join(lines)


def pip_install_command(lock: Path, target: Path, python: str = sys.executable) -> list[str]:
    """pip installing exactly the locked wheels for the Lambda runtime into ``target``."""
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    return [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        # pip would compile with the interpreter running it, not the image's 3.12: no .pyc.
        "--no-compile",
        "--target",
        str(target),
        "--requirement",
        str(lock),
    ]


def install_dependencies(lock: Path, target: Path, python: str = sys.executable) -> None:
    if not lock.is_file():
        raise BuildError(f"lock file {lock} not found (make lock)")
    result = subprocess.run(pip_install_command(lock, target, python), check=False)
    if result.returncode != 0:
        raise BuildError(f"pip could not install {lock} for CPython {PYTHON_VERSION} {PLATFORMS[0]}")
    # Console scripts carry the build machine's interpreter in their shebang: useless in Lambda.
    shutil.rmtree(target / "bin", ignore_errors=True)


def python_version_of(python: str) -> str | None:
    """``"3.12"`` for a working CPython 3.12 at ``python``; None when it does not run."""
    try:
        result = subprocess.run(
            [python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def lambda_python_candidates() -> list[str]:
    """Where a CPython 3.12 may be: $MF_LAMBDA_PYTHON, python3.12 on PATH, pyenv's versions."""
    candidates = []
    if configured := os.environ.get(LAMBDA_PYTHON_ENV):
        candidates.append(configured)
    if on_path := shutil.which(f"python{PYTHON_VERSION}"):
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pyenv = sorted(pyenv_root.glob(f"versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"), reverse=True)
    candidates += [str(path) for path in pyenv]
    return candidates


def find_lambda_python() -> str | None:
    """The first candidate that runs and is 3.12 (a pyenv shim of another version does not)."""
    if configured := os.environ.get(LAMBDA_PYTHON_ENV):
        # An explicit choice that does not work is an error, not a reason to look elsewhere.
        if python_version_of(configured) != PYTHON_VERSION:
            raise BuildError(f"{LAMBDA_PYTHON_ENV}={configured} is not a working Python {PYTHON_VERSION}")
        return configured
    return next(
        (python for python in lambda_python_candidates() if python_version_of(python) == PYTHON_VERSION),
        None,
    )


def compile_bytecode(target: Path, lambda_python: str) -> None:
    """CPython 3.12 .pyc files for every module; checked by hash, never by timestamp (COPY keeps none)."""
    if python_version_of(lambda_python) != PYTHON_VERSION:
        raise BuildError(f"{lambda_python} is not a working Python {PYTHON_VERSION}")
    command = [lambda_python, "-I", "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", str(target)]
    if subprocess.run(command, check=False).returncode != 0:
        raise BuildError(f"{lambda_python} -m compileall failed in {target}")


def _ignore_non_sources(directory: str, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if name in ("__pycache__", ".chalice")
        or (not (Path(directory) / name).is_dir() and not name.endswith(PACKAGE_FILE_SUFFIXES))
    }


def copy_application(target: Path, repo_root: Path = REPO_ROOT) -> None:
    """``app.py`` at the task root and the project's packages beside it."""
    for name in ("app.py", *PACKAGES):
        if (target / name).exists():
            raise BuildError(f"a dependency installed {target / name}, which the application needs")
    shutil.copy2(repo_root / APP_SOURCE, target / "app.py")
    for package in PACKAGES:
        shutil.copytree(repo_root / package, target / package, ignore=_ignore_non_sources)


def _tree_bytes(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(item.lstat().st_size for item in path.rglob("*") if not item.is_dir() or item.is_symlink())


def distribution_of(entry: str) -> str:
    """numpy, numpy.libs and numpy-2.4.6.dist-info all count as numpy; six.py as six."""
    for suffix in (".libs", ".dist-info", ".py"):
        if entry.endswith(suffix):
            entry = entry.removesuffix(suffix).split("-")[0]
    return entry.lower()


def measure(root: Path) -> Artifact:
    sizes: dict[str, int] = {}
    for entry in root.iterdir():
        name = distribution_of(entry.name)
        sizes[name] = sizes.get(name, 0) + _tree_bytes(entry)
    ranked = tuple(sorted(sizes.items(), key=lambda item: (-item[1], item[0])))
    return Artifact(root=root, total_bytes=sum(sizes.values()), sizes=ranked)


def check_limits(artifact: Artifact, budget_bytes: int = PROJECT_BUDGET_BYTES) -> None:
    if artifact.total_bytes + BASE_IMAGE_ALLOWANCE_BYTES > CONTAINER_IMAGE_LIMIT_BYTES:
        raise BuildError(
            f"{artifact.total_bytes / MB:.0f} MB plus the base image exceeds Lambda's 10 GB image limit"
        )
    if artifact.total_bytes > budget_bytes:
        raise BuildError(
            f"{artifact.total_bytes / MB:.0f} MB exceeds the project's budget of {budget_bytes / MB:.0f} MB "
            f"(largest: {', '.join(name for name, _ in artifact.top())})"
        )


def build(
    output: Path,
    lock: Path = DEFAULT_LOCK,
    lambda_python: str | None = None,
    python: str = sys.executable,
    repo_root: Path = REPO_ROOT,
) -> Artifact:
    """A fresh ``output`` folder: the locked dependencies, the application and, given
    ``lambda_python`` (a CPython 3.12), their bytecode."""
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    install_dependencies(lock, output, python)
    copy_application(output, repo_root)
    if lambda_python is not None:
        compile_bytecode(output, lambda_python)
    make_world_readable(output)
    return measure(output)


def make_world_readable(root: Path) -> None:
    """Lambda runs the code as a user that owns none of it: whatever the builder's umask, every file
    is readable (and every folder listable) by all, and nothing is writable but by its owner."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        readable = mode | (0o755 if path.is_dir() or mode & 0o100 else 0o644)
        path.chmod(readable & 0o755)


def without(artifact_root: Path, excluded: Iterable[str], farm: Path) -> Path:
    """A symlink farm of ``artifact_root`` lacking the top-level entries ``excluded`` (tests)."""
    skipped = set(excluded)
    farm.mkdir(parents=True, exist_ok=True)
    for entry in artifact_root.iterdir():
        if entry.name not in skipped:
            (farm / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return farm


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="hashed requirements to install")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the task root to (re)create")
    parser.add_argument(
        "--budget-mb", type=int, default=PROJECT_BUDGET_BYTES // MB, help="fail above this many MB"
    )
    parser.add_argument(
        "--lambda-python",
        help=f"the CPython {PYTHON_VERSION} that compiles the bytecode (default: found, see above)",
    )
    parser.add_argument("--no-bytecode", action="store_true", help="ship sources only (slower cold starts)")
    args = parser.parse_args(argv)
    try:
        lambda_python = None
        if not args.no_bytecode:
            lambda_python = args.lambda_python or find_lambda_python()
            if lambda_python is None:
                raise BuildError(
                    f"no Python {PYTHON_VERSION} found to compile the bytecode: set {LAMBDA_PYTHON_ENV}, "
                    f"pass --lambda-python or --no-bytecode (tried {lambda_python_candidates()})"
                )
        artifact = build(args.output.resolve(), args.lock.resolve(), lambda_python)
        print(artifact.summary())
        check_limits(artifact, args.budget_mb * MB)
    except BuildError as error:
        print(f"build_lambda_artifact: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
