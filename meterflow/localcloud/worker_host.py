"""The local stand-in for Lambda's SQS event source mappings.

Each worker process long-polls one queue and calls the very handler Lambda would call (a Chalice
``on_sqs_message`` function) with an SQS event of one record. A message is deleted only when the
handler returns; if it raises, or the process dies, the message becomes visible again after the
queue's visibility timeout and, after ``maxReceiveCount`` tries, lands in the DLQ: nothing
accepted is lost. A supervisor restarts processes that die.

The host owns its processes' lifetime: they ignore SIGINT (a Ctrl-C reaches the terminal's whole
process group; the host stops them in order instead), and :meth:`WorkerHost.stop` ends the
supervisor before it asks the workers to finish, then terminates those that do not within a bound.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
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
# A worker that died is restarted only if the host is still running this long after: a signal sent
# to the whole process group (SIGTERM from a service manager) reaches the host at the same moment.
_RESTART_GRACE_SECONDS = 0.5
_IGNORED_SIGNALS = {signal.SIGINT}


@dataclass(frozen=True)
class StopReport:
    """What :meth:`WorkerHost.stop` did: how many queues and processes, how many needed a signal."""

    queues: int
    processes: int
    terminated: int
    killed: int


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
    # The host started this process with SIGINT blocked, so a Ctrl-C during start-up stays pending;
    # ignoring SIGINT discards it. The host stops its workers itself, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _IGNORED_SIGNALS)
    host = os.getppid()
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
        if os.getppid() != host:
            return  # the host died without stopping us (SIGKILL): nobody would ever stop this process
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


def _worker_main(binding: QueueBinding, env: Mapping[str, str], stop: EventType, ready: Any) -> None:
    """A worker process: poll until stopped, then leave at once.

    Tearing down an interpreter that imported pyarrow, duckdb and boto3 takes about a second of CPU;
    ten workers doing it together on a small machine would take several. Nothing in a worker needs
    it: messages are deleted as they are handled and logs are flushed here.
    """
    poll_queue(binding, env, stop, ready)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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
            target=_worker_main,
            args=(binding, self._env, self._stop, self._ready),
            name=f"{binding.name}-{slot}",
            daemon=True,
        )
        # The child inherits the signal mask through fork and exec: SIGINT stays blocked until
        # poll_queue ignores it, so a Ctrl-C while the interpreter starts cannot raise in it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _IGNORED_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._processes[(binding.name, slot)] = process

    def start(self) -> None:
        for binding in self._bindings:
            for slot in range(binding.processes):
                self._spawn(binding, slot)
        self._supervisor.start()

    def _supervise(self) -> None:
        by_name = {binding.name: binding for binding in self._bindings}
        while not self._stop.wait(0.5):
            dead = [key for key, process in self._processes.items() if not process.is_alive()]
            if not dead or self._stop.wait(_RESTART_GRACE_SECONDS):
                continue  # nothing to do, or the host is stopping: its workers are not to come back
            for name, slot in dead:
                exitcode = self._processes[(name, slot)].exitcode
                logger.warning("worker %s-%s exited with %s; restarting", name, slot, exitcode)
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

    def stop(self, grace: float = 2.0) -> StopReport:
        """Stop the supervisor, then the workers: ``grace`` seconds to finish, then SIGTERM, then SIGKILL.

        An idle worker notices the stop within a second (its receive waits 1 s). One in the middle of
        a message is terminated after ``grace``: its message is redelivered, as after any crash.
        """
        self._stop.set()  # the supervisor's loop ends on it too: no restart from here on
        if self._supervisor.is_alive():
            self._supervisor.join()
        processes = list(self._processes.values())
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        terminated = [process for process in processes if process.is_alive()]
        for process in terminated:
            process.terminate()
        deadline = time.monotonic() + 1.0
        for process in terminated:
            process.join(max(0.0, deadline - time.monotonic()))
        killed = [process for process in terminated if process.is_alive()]
        for process in killed:
            process.kill()
            process.join(1.0)
        return StopReport(
            queues=len(self._bindings),
            processes=len(processes),
            terminated=len(terminated) - len(killed),
            killed=len(killed),
        )
