"""Run the end-to-end suite (tests/e2e) against a real LocalStack, started on the host without Docker.

1. Creates ``.venv-localstack`` with Python 3.13 (LocalStack's runtime needs it) and installs the
   exact pins of ``requirements.txt`` plus the DynamoDB-on-moto provider in ``dynamodb_moto/``; a
   stamp holding a digest of those files makes later runs skip the install.
2. Starts LocalStack in host mode (``python -m localstack.runtime.main``) on 127.0.0.1:4566, or
   on a free port when 4566 is taken, with its state in a temporary directory, and waits until
   ``/_localstack/health`` reports every service the stack uses as running.
3. Runs ``.venv/bin/python -m pytest tests/e2e -m e2e`` with ``AWS_ENDPOINT_URL`` naming it.
4. Stops LocalStack (SIGTERM to its process group, a wait, SIGKILL after 30 s) and exits with
   pytest's code.

Extra arguments are passed to pytest, e.g. ``run_e2e.py -k export -x``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv-localstack"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
REQUIREMENTS = HERE / "requirements.txt"
PLUGIN = HERE / "dynamodb_moto"
PLUGIN_FILES = (PLUGIN / "pyproject.toml", PLUGIN / "meterflow_localstack_dynamodb" / "__init__.py")
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
LOG_PATH = ROOT / "build" / "localstack" / "localstack.log"

# Every AWS service that meterflow/localcloud/bootstrap.py and the runtime call (athena is not:
# the local runtime queries the lake with DuckDB).
SERVICES = ("s3", "sqs", "dynamodb", "stepfunctions", "secretsmanager", "events", "sns", "sts")
# The entry point name of the provider in dynamodb_moto/pyproject.toml.
DYNAMODB_PROVIDER = "meterflow_moto"
DEFAULT_PORT = 4566
STARTUP_TIMEOUT_SECONDS = 180.0
MISSING_GRACE_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 80


class StartupError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[test-localstack] {message}", flush=True)


def find_python313() -> str:
    """LOCALSTACK_PYTHON, a pyenv 3.13, or python3.13 on PATH: the first that runs and is 3.13."""
    candidates = [os.environ.get("LOCALSTACK_PYTHON", "")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(path) for path in pyenv_root.glob("versions/3.13*/bin/python3.13"))
    candidates.append(shutil.which("python3.13") or "")  # last: a pyenv shim may not resolve
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"]
        result = subprocess.run(probe, capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip() == "True":
            return candidate
    raise StartupError("LocalStack needs Python 3.13: put python3.13 on PATH or set LOCALSTACK_PYTHON")


def install_digest() -> str:
    """What the stamp records: a change to the pins or to the provider reinstalls."""
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, *PLUGIN_FILES):
        digest.update(str(path.relative_to(HERE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    wanted = install_digest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted and VENV_PYTHON.is_file():
        return
    if not VENV_PYTHON.is_file():
        python = find_python313()
        log(f"creating {VENV.relative_to(ROOT)} with {python}")
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    log(f"installing LocalStack into {VENV.relative_to(ROOT)} (a few minutes the first time)")
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--requirement", str(REQUIREMENTS)], check=True)
    # Built from a copy, so setuptools leaves no build/ or egg-info in the repository; no build
    # isolation: setuptools is among the pins, so nothing else is fetched to build it.
    with tempfile.TemporaryDirectory(prefix="meterflow-localstack-plugin-") as scratch:
        source = shutil.copytree(PLUGIN, Path(scratch) / PLUGIN.name)
        subprocess.run([*pip, "--no-deps", "--no-build-isolation", str(source)], check=True)
    STAMP.write_text(wanted + "\n")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port() -> int:
    if port_is_free(DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def localstack_env(port: int, filesystem_root: Path) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "LOCALSTACK_"))
    }
    environment.update(
        {
            "OVERRIDE_IN_DOCKER": "0",  # host mode: no Docker, LocalStack runs in this process tree
            "GATEWAY_SERVER": "hypercorn",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            # URLs LocalStack hands out (queue URLs) name this address, not localhost.localstack.cloud,
            # which needs DNS; SQS URLs then read http://127.0.0.1:PORT/ACCOUNT/QUEUE, as in AWS.
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "SQS_ENDPOINT_STRATEGY": "off",
            "FILESYSTEM_ROOT": str(filesystem_root),
            "PROVIDER_OVERRIDE_DYNAMODB": DYNAMODB_PROVIDER,
            "SERVICES": ",".join(SERVICES),
            "EAGER_SERVICE_LOADING": "1",  # load them now, so a broken provider fails the start
            "DNS_ADDRESS": "0",  # no DNS server on port 53
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics
            "PYTHONUNBUFFERED": "1",
        }
    )
    return environment


def log_tail(lines: int = LOG_TAIL_LINES) -> str:
    if not LOG_PATH.is_file():
        return "(no log)"
    return "\n".join(LOG_PATH.read_text(errors="replace").splitlines()[-lines:])


def health(endpoint: str) -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=5) as response:  # noqa: S310
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    services = body.get("services", {})
    return {str(name): str(state) for name, state in services.items()}


def wait_healthy(process: subprocess.Popen[bytes], endpoint: str) -> None:
    """Until every service in SERVICES is "running"; fails on "error", and on a service LocalStack
    still does not list MISSING_GRACE_SECONDS after it first answered (its provider did not load)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    first_answer: float | None = None
    states: dict[str, str] | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"LocalStack exited with code {process.returncode} while starting")
        states = health(endpoint)
        if states is not None:
            first_answer = first_answer or time.monotonic()
            failed = {name: states[name] for name in SERVICES if states.get(name) == "error"}
            if failed:
                raise StartupError(f"LocalStack services failed to start: {failed}")
            if all(states.get(name) == "running" for name in SERVICES):
                return
            missing = [name for name in SERVICES if name not in states]
            if missing and time.monotonic() - first_answer > MISSING_GRACE_SECONDS:
                raise StartupError(f"LocalStack does not offer {missing} (its provider did not load)")
        time.sleep(0.5)
    last = states or {}
    pending = {name: last.get(name) for name in SERVICES if last.get(name) != "running"}
    raise StartupError(f"LocalStack not healthy after {STARTUP_TIMEOUT_SECONDS:.0f} s: {pending}")


def start_localstack(port: int, filesystem_root: Path) -> subprocess.Popen[bytes]:
    LOG_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOG_PATH.open("wb") as log_file:
        return subprocess.Popen(
            [str(VENV_PYTHON), "-m", "localstack.runtime.main"],
            cwd=filesystem_root,
            env=localstack_env(port, filesystem_root),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it reaches its children
        )


def stop_localstack(process: subprocess.Popen[bytes], port: int) -> None:
    """SIGTERM to LocalStack's process group, then wait; SIGKILL only what outlives the grace.

    LocalStack's own shutdown (services, then its server) takes a few seconds; then its interpreter
    frees its state (about 800 MB after the suite), single-threaded, which on a loaded machine has
    taken over 20 s. That state lives in a temporary directory about to be deleted anyway, so a
    process still there after the grace is killed rather than waited for.
    """
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        state = "its server had stopped" if port_is_free(port) else "its server was still up"
        log(f"LocalStack still running {STOP_TIMEOUT_SECONDS:.0f} s after SIGTERM ({state}); killing it")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


def run_pytest(endpoint: str, extra_args: Sequence[str]) -> int:
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    environment.pop("AWS_PROFILE", None)
    environment.pop("AWS_SESSION_TOKEN", None)
    command = [str(PROJECT_PYTHON), "-m", "pytest", "tests/e2e", "-m", "e2e", *extra_args]
    log(f"AWS_ENDPOINT_URL={endpoint} {' '.join(command[1:])}")
    return subprocess.run(command, cwd=ROOT, env=environment, check=False).returncode


def main(argv: Sequence[str]) -> int:
    started = time.monotonic()
    try:
        ensure_venv()
    except (StartupError, subprocess.CalledProcessError) as error:
        log(f"FAILED to install LocalStack: {error}")
        return 2
    port = pick_port()
    endpoint = f"http://127.0.0.1:{port}"
    filesystem_root = Path(tempfile.mkdtemp(prefix="meterflow-localstack-"))
    process: subprocess.Popen[bytes] | None = None
    code = 2
    try:
        log(f"starting LocalStack on {endpoint} (log: {LOG_PATH.relative_to(ROOT)})")
        starting = time.monotonic()
        process = start_localstack(port, filesystem_root)
        try:
            wait_healthy(process, endpoint)
        except StartupError as error:
            log(f"FAILED: {error}\n--- last {LOG_TAIL_LINES} lines of {LOG_PATH} ---\n{log_tail()}")
            return 2
        log(f"LocalStack ready in {time.monotonic() - starting:.0f} s")
        testing = time.monotonic()
        code = run_pytest(endpoint, argv)
        log(f"pytest took {time.monotonic() - testing:.0f} s")
    finally:
        if process is not None:
            stop_localstack(process, port)
        shutil.rmtree(filesystem_root, ignore_errors=True)
        outcome = "passed" if code == 0 else f"FAILED (exit {code})"
        log(f"{outcome}; elapsed {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
