"""``python -m onprem_worker``: run the worker until SIGTERM or SIGINT.

``python -m onprem_worker healthcheck`` exits 0 while the running worker's health file is fresh
(the Docker HEALTHCHECK): the worker touches it every few seconds while it is connected and
subscribed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from onprem_worker.config import ConfigError, WorkerSettings, health_file_from_environment
from onprem_worker.historians import historian_from_url
from onprem_worker.jobs import handlers
from onprem_worker.journal import JobJournal
from onprem_worker.worker import HEALTH_TOUCH_SECONDS, Worker

HEALTH_MAX_AGE_SECONDS = 6 * HEALTH_TOUCH_SECONDS


def run() -> int:
    try:
        settings = WorkerSettings.from_environment()
        historian = (
            None
            if settings.historian_url is None
            else historian_from_url(settings.historian_url, settings.historian_batch_rows)
        )
    except (ConfigError, ValueError, OSError) as exc:
        print(f"meterflow on-premises worker: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("meterflow.onprem_worker").info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker = Worker(settings, handlers(historian), JobJournal(settings.journal_path))
    worker.start()
    stop.wait()
    worker.stop()
    return 0


def healthcheck() -> int:
    path = health_file_from_environment()
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: {path} does not exist (not connected yet?)", file=sys.stderr)
        return 1
    if age > HEALTH_MAX_AGE_SECONDS:
        print(f"unhealthy: {path} is {age:.0f} s old (disconnected?)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onprem_worker", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["run", "healthcheck"], default="run")
    arguments = parser.parse_args(argv)
    if arguments.command == "healthcheck":
        return healthcheck()
    logging.basicConfig(
        level=os.environ.get("MF_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s",
    )
    return run()


if __name__ == "__main__":
    sys.exit(main())
