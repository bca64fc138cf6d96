"""What the Chalice app declares, read from the app itself: the local runtime's only source for which
function serves which queue and what runs on a schedule (Terraform declares the same in AWS;
tests/deploy checks that both agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Lambda runs ``app.<name>``; the local worker processes import the same module.
APP_MODULE = "chalice_app.app"


@dataclass(frozen=True)
class RegisteredHandlers:
    queue_handlers: dict[str, str]  # queue name -> "chalice_app.app:<function>"
    scheduled: dict[str, Callable[[dict[str, Any], Any], Any]]  # function name -> handler


def registered_handlers() -> RegisteredHandlers:
    """The app's SQS and schedule handlers. Queue names are read from the environment when the app
    is first imported: import it only once the runtime environment is in ``os.environ``."""
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    from chalice_app.app import app

    queues: dict[str, str] = {}
    scheduled: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
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
            scheduled[source.name] = app.handler_map[source.name]
        else:
            raise RuntimeError(f"{source.name}: the local runtime cannot serve {type(source).__name__}")
    return RegisteredHandlers(queues, scheduled)
