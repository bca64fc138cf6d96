"""In-process moto (``mock_aws``) holding only the stack resources one port contract test needs.

The resources are created by the local runtime's own :func:`~meterflow.localcloud.bootstrap.bootstrap`
from :func:`~meterflow.localcloud.stack.stack_spec`, narrowed to the ones named: a table has the
production key schema and TTL, a queue its dead-letter queue and attributes, a state machine its
rendered definition, an event rule its pattern and target. Nothing leaves the process: the
environment is pointed at fake credentials and stripped of anything that would send boto3 to a
real endpoint or a moto server.

Each stack lives in an AWS account of its own (``MOTO_ACCOUNT_ID``): it starts empty even when
another ``mock_aws`` is already active in the process (the functional tier keeps one for the whole
session, and moto neither resets nor isolates a nested mock).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.localcloud.bootstrap import bootstrap
from meterflow.localcloud.stack import StackSpec, stack_spec

REGION = "us-east-1"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "contract-tests", "AWS_SECRET_ACCESS_KEY": "contract-tests"}
# Variables that would send boto3 elsewhere than moto's in-process interception (or to a real account).
_REDIRECTS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MOTO_PORT")
_NOT_A_KEY = "not a private key: the contract tests never open an SFTP session"


@functools.cache
def _clients() -> AwsClients:
    """One set of clients for all tests (~0.4 s saved a test): moto intercepts every client's calls
    while a mock is active, whenever the client was built, and resets its state between mocks."""
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return aws_clients(REGION, session)


@dataclass(frozen=True)
class MotoStack:
    spec: StackSpec
    clients: AwsClients
    queue_urls: dict[str, str]

    def bucket(self, key: str) -> str:
        return self.spec.bucket(key).name

    def table(self, key: str) -> str:
        return self.spec.table(key).name

    def state_machine_arn(self, key: str) -> str:
        return self.spec.state_machine_arn(key)

    def receive(self, queue_key: str) -> list[str]:
        """The bodies of every message now visible on the queue, each deleted once received."""
        bodies: list[str] = []
        while True:
            messages = self.clients.sqs.receive_message(
                QueueUrl=self.queue_urls[queue_key], MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self.clients.sqs.delete_message(
                    QueueUrl=self.queue_urls[queue_key], ReceiptHandle=message["ReceiptHandle"]
                )


@contextmanager
def moto_stack(
    monkeypatch: pytest.MonkeyPatch,
    *,
    buckets: Sequence[str] = (),
    queues: Sequence[str] = (),
    tables: Sequence[str] = (),
    state_machines: Sequence[str] = (),
    event_rules: Sequence[str] = (),
    execute_state_machines: bool = False,
) -> Iterator[MotoStack]:
    """moto in this process with the named resources of the stack (keys of :func:`stack_spec`).

    With ``execute_state_machines`` moto runs executions (Tasks send their tokens, answers move
    them on); without, an execution stays RUNNING until stopped.
    """
    for name in [*_REDIRECTS, *(name for name in os.environ if name.startswith("AWS_ENDPOINT_URL"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in _CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    account_id = f"{uuid.uuid4().int % 10**12:012d}"
    monkeypatch.setenv("MOTO_ACCOUNT_ID", account_id)
    # Set here rather than by mock_aws(config=...): a nested mock_aws never restores its config.
    monkeypatch.setitem(
        default_user_config, "stepfunctions", {"execute_state_machine": execute_state_machines}
    )
    full = stack_spec(region=REGION, account_id=account_id)
    only = replace(
        full,
        buckets=tuple(full.bucket(key) for key in buckets),
        queues=tuple(full.queue(key) for key in queues),
        tables=tuple(full.table(key) for key in tables),
        state_machines=tuple(full.state_machine(key) for key in state_machines),
        event_rules=tuple(full.event_rule(key) for key in event_rules),
        topics=(),
        notifications=(),
        schedules=(),
    )
    with mock_aws():
        clients = _clients()
        queue_urls = bootstrap(only, clients, _NOT_A_KEY)
        yield MotoStack(only, clients, queue_urls)
