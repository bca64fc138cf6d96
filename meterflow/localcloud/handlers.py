"""What the Chalice app declares, read from the app itself: the local runtime's only source for which
function serves which queue and what runs on a schedule (Terraform declares the same in AWS;
tests/deploy and tests/functional check that both agree).

The Blueprints read their queue names from the environment when first imported, so the registry is
read in a fresh interpreter given the runtime's environment: the calling process may have imported
the app already, for another stack (the tests do).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Lambda runs ``app.<name>``; the local worker processes import the same module.
APP_MODULE = "chalice_app.app"
_READ_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class RegisteredHandlers:
    queue_handlers: dict[str, str]  # queue name -> "chalice_app.app:<function>"
    scheduled: tuple[str, ...]  # names of the scheduled functions

    def scheduled_handlers(self) -> list[Callable[[dict[str, Any], Any], Any]]:
        """The scheduled functions, from this process's app (they do not depend on queue names)."""
        from chalice_app.app import app

        return [app.handler_map[name] for name in self.scheduled]


def registered_handlers(environment: Mapping[str, str]) -> RegisteredHandlers:
    """The app's SQS and schedule handlers as the app registers them under ``environment``."""
    completed = subprocess.run(
        [sys.executable, "-m", __name__],
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=_READ_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"could not read the app's handlers:\n{completed.stderr[-4000:]}")
    found = json.loads(completed.stdout)
    return RegisteredHandlers(dict(found["queues"]), tuple(found["scheduled"]))


def _read_registry() -> dict[str, Any]:
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    from chalice_app.app import app

    queues: dict[str, str] = {}
    scheduled: list[str] = []
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            if source.queue is None:  # declared by ARN: the local runtime serves queues by name
                raise RuntimeError(f"{source.name}: the local runtime needs the queue's name")
            if source.queue in queues:
                raise RuntimeError(
                    f"queue {source.queue} has two handlers: {queues[source.queue]}, {source.name}"
                )
            queues[source.queue] = f"{APP_MODULE}:{source.name}"
        elif isinstance(source, ScheduledEventConfig):
            scheduled.append(source.name)
        else:
            raise RuntimeError(f"{source.name}: the local runtime cannot serve {type(source).__name__}")
    return {"queues": queues, "scheduled": scheduled}


if __name__ == "__main__":
    print(json.dumps(_read_registry()))
