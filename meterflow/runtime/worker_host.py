"""The local stand-in for Lambda's SQS event source mappings.

Each worker process long-polls one queue and calls the very handler Lambda would call (a Chalice
``on_sqs_message`` function) with an SQS event of one record. A message is deleted only when the
handler returns; if it raises, or the process dies, the message becomes visible again after the
queue's visibility timeout and, after ``maxReceiveCount`` tries, lands in the DLQ: nothing
accepted is lost. A supervisor restarts processes that die.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

logger = logging.getLogger("meterflow.workerhost")

_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class QueueBinding:
    """A queue, the handler that serves it (``module:function``) and how many processes poll it."""

    name: str
    queue_url: str
    queue_arn: str
    handler: str
    processes: int = 1


class _LambdaContext:
    """The parts of the Lambda context object our handlers (and Chalice) read."""

    def __init__(self, function_name: str, timeout_s: float) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _sqs_event(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        ]
    }


def poll_queue(binding: QueueBinding, env: Mapping[str, str], stop: EventType, ready: Any = None) -> None:
    """The body of one worker process: receive, handle, delete, until ``stop`` is set.

    ``ready`` (a shared counter) is incremented once the handler is imported and polling starts.
    """
    os.environ.update(env)
    logging.basicConfig(
        level=env.get("MF_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s {binding.name}[%(process)d] %(name)s %(levelname)s %(message)s",
    )
    import boto3  # imported after the environment is set, so the endpoint applies

    module_name, function_name = binding.handler.split(":")
    handler = getattr(importlib.import_module(module_name), function_name)
    region = env.get("AWS_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name=region)
    if ready is not None:
        with ready.get_lock():
            ready.value += 1
    while not stop.is_set():
        try:
            response = sqs.receive_message(
                QueueUrl=binding.queue_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=1,  # short, so a stop request is honoured within a second
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:
            if stop.is_set():
                return
            logger.warning("receive from %s failed; retrying", binding.name, exc_info=True)
            time.sleep(1)
            continue
        for message in response.get("Messages", []):
            try:
                handler(_sqs_event(message, binding.queue_arn, region), _LambdaContext(function_name, 900))
            except Exception:
                # Left on the queue: redelivered after the visibility timeout, then dead-lettered.
                logger.exception("handler %s failed on message %s", binding.handler, message["MessageId"])
                continue
            sqs.delete_message(QueueUrl=binding.queue_url, ReceiptHandle=message["ReceiptHandle"])


class WorkerHost:
    """Starts, supervises and stops the worker processes for a set of queue bindings."""

    def __init__(self, bindings: list[QueueBinding], env: Mapping[str, str]) -> None:
        self._bindings = bindings
        self._env = dict(env)
        self._stop = _SPAWN.Event()
        self._processes: dict[tuple[str, int], SpawnProcess] = {}
        self._supervisor = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._ready = _SPAWN.Value("i", 0)
        self.restarts = 0

    def _spawn(self, binding: QueueBinding, slot: int) -> None:
        process = _SPAWN.Process(
            target=poll_queue,
            args=(binding, self._env, self._stop, self._ready),
            name=f"{binding.name}-{slot}",
            daemon=True,
        )
        process.start()
        self._processes[(binding.name, slot)] = process

    def start(self) -> None:
        for binding in self._bindings:
            for slot in range(binding.processes):
                self._spawn(binding, slot)
        self._supervisor.start()

    def _supervise(self) -> None:
        by_name = {binding.name: binding for binding in self._bindings}
        while not self._stop.wait(0.5):
            for (name, slot), process in list(self._processes.items()):
                if not process.is_alive() and not self._stop.is_set():
                    logger.warning("worker %s-%s exited with %s; restarting", name, slot, process.exitcode)
                    self.restarts += 1
                    self._spawn(by_name[name], slot)

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until every worker process has imported its handler and polls its queue.

        Starting a dozen Python processes that import pyarrow takes seconds of CPU on a small
        machine; callers that measure or demonstrate something wait for that to finish first.
        """
        expected = sum(binding.processes for binding in self._bindings)
        deadline = time.monotonic() + timeout
        while self._ready.value < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self._ready.value} of {expected} workers ready after {timeout} s")
            time.sleep(0.1)

    def pids(self, name: str) -> list[int]:
        return [p.pid for (queue, _), p in self._processes.items() if queue == name and p.pid is not None]

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        deadline = time.monotonic() + timeout
        for process in self._processes.values():
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(2)
