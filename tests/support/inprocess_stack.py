"""The Meterflow stack in moto, inside the test process: no server, no worker, no broker.

:func:`start_stack` creates every resource of the local runtime's stack (its own ``stack_spec`` and
``bootstrap``) in an active ``mock_aws`` and computes the environment the local runtime would give
its API and workers (``LocalCloud.runtime_environment``), so the variable names are never spelled
here: a renamed setting is renamed for these tests too. Two settings are switched to what the AWS
deployment uses, because their local choices need servers outside moto: site jobs are published
through the ``iot-data`` API (moto records them) instead of MQTT, and lake queries run in Athena
(moto answers them) instead of DuckDB over pyarrow's S3 client (which moto cannot intercept).

moto executes state machines (``MOTO_CONFIG``): a workflow's Task sends a real job message with a
real task token, and SendTaskSuccess/Failure move the execution on, as in AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from chalice.test import Client

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.localcloud.bootstrap import bootstrap
from meterflow.localcloud.local_cloud import LocalCloud, LocalCloudConfig
from meterflow.localcloud.mqtt_broker import MqttClientOptions
from meterflow.localcloud.stack import StackSpec, stack_spec

T = TypeVar("T")

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
# The SDK's own variables that would send boto3 to a moto *server*; in-process moto intercepts AWS URLs.
_SERVER_ONLY = ("AWS_ENDPOINT_URL", "MOTO_PORT")
# Not a usable key: the lake's SFTP download is not exercised by this tier.
_SFTP_KEY_PLACEHOLDER = "-----BEGIN RSA PRIVATE KEY-----\nfunctional-tests\n-----END RSA PRIVATE KEY-----\n"


def eventually(condition: Callable[[], T | None], what: str, timeout_s: float = 10.0) -> T:
    """The first truthy value of ``condition``, polled for ``timeout_s`` (moto runs workflows on threads)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class InProcessStack:
    spec: StackSpec
    clients: AwsClients
    queue_urls: dict[str, str]
    # what the app's wiring reads: the local runtime's environment, AWS transport for sites and queries
    environment: dict[str, str]

    # ---------------------------------------------------------------------------------- queues
    def messages(self, queue_key: str, wait_s: float = 0.0) -> Iterator[str]:
        """Bodies on a queue, each deleted once received, until the queue is empty and ``wait_s`` passed."""
        deadline = time.monotonic() + wait_s
        while True:
            received = self.clients.sqs.receive_message(
                QueueUrl=self.queue_urls[queue_key], MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in received:
                self.clients.sqs.delete_message(
                    QueueUrl=self.queue_urls[queue_key], ReceiptHandle=message["ReceiptHandle"]
                )
                yield message["Body"]
            if not received:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)

    def next_message(
        self, queue_key: str, matches: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
    ) -> str:
        """The first body on a queue that ``matches`` (parsed as JSON); others are leftovers, dropped."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() <= deadline:
            for body in self.messages(queue_key, wait_s=max(0.0, deadline - time.monotonic())):
                try:
                    parsed = json.loads(body)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and matches(parsed):
                    return body
        raise AssertionError(f"no matching message on {queue_key} within {timeout_s} s")

    def drain(self, queue_key: str) -> list[str]:
        return list(self.messages(queue_key))

    # ------------------------------------------------------------------------------- workflows
    def execution_arn(self, machine_key: str, name: str) -> str:
        arn = self.spec.state_machine_arn(machine_key)
        return f"{arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def executions(self, machine_key: str) -> list[dict[str, Any]]:
        return list(
            self.clients.stepfunctions.list_executions(
                stateMachineArn=self.spec.state_machine_arn(machine_key)
            )["executions"]
        )

    def execution_status(self, execution_arn: str) -> str:
        return str(self.clients.stepfunctions.describe_execution(executionArn=execution_arn)["status"])

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(
            self.clients.stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)[
                "events"
            ]
        )

    def entered_states(self, execution_arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if "stateEnteredEventDetails" in event
        ]

    def wait_until_entered(self, execution_arn: str, state: str, timeout_s: float = 10.0) -> list[str]:
        """The states the execution entered, once ``state`` is among them."""

        def entered() -> list[str] | None:
            states = self.entered_states(execution_arn)
            return states if state in states else None

        return eventually(entered, f"{execution_arn.rsplit(':', 1)[-1]} to enter {state}", timeout_s)

    def wait_until_ended(self, execution_arn: str, timeout_s: float = 10.0) -> str:
        """The execution's final status (SUCCEEDED, FAILED, ABORTED...)."""

        def ended() -> str | None:
            status = self.execution_status(execution_arn)
            return status if status != "RUNNING" else None

        return eventually(ended, f"{execution_arn.rsplit(':', 1)[-1]} to end", timeout_s)

    def stop_running_executions(self) -> None:
        """Stops what a test left waiting for a token, so no workflow of it acts in a later test (moto
        lists a stopped execution as RUNNING until the task it waits for returns, which none will)."""
        for machine in self.spec.state_machines:
            for execution in self.executions(machine.key):
                if execution["status"] == "RUNNING":
                    self.clients.stepfunctions.stop_execution(
                        executionArn=execution["executionArn"], error="TestEnded"
                    )

    # ---------------------------------------------------------------------------------- tables
    def item(self, table_key: str, **key: str) -> dict[str, Any] | None:
        """An item of a stack table, flattened to its attributes' values (numbers as strings)."""
        found = self.clients.dynamodb.get_item(
            TableName=self.spec.table(table_key).name,
            Key={name: {"S": value} for name, value in key.items()},
            ConsistentRead=True,
        ).get("Item")
        return None if found is None else {name: next(iter(value.values())) for name, value in found.items()}

    def delete_item(self, table_key: str, **key: str) -> None:
        self.clients.dynamodb.delete_item(
            TableName=self.spec.table(table_key).name,
            Key={name: {"S": value} for name, value in key.items()},
        )

    # ----------------------------------------------------------------------------------- sites
    def published_to_sites(self) -> list[tuple[str, bytes]]:
        """Every (topic, payload) published through the iot-data API, oldest first."""
        from moto.iotdata.models import iotdata_backends

        backend = iotdata_backends[self.spec.account_id][self.spec.region]
        return list(backend.published_payloads)

    # ---------------------------------------------------------------------------------- athena
    def answer_next_athena_query(self, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
        """The result moto gives the next Athena query (moto's documented result injection)."""
        import requests

        header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
        data = [{"Data": [{"VarCharValue": value} for value in row]} for row in rows]
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
            json={
                "account_id": self.spec.account_id,
                "region": self.spec.region,
                "results": [
                    {
                        "rows": [header, *data],
                        "column_info": [
                            {"Name": name, "Label": name, "Type": kind, "CatalogName": "", "SchemaName": ""}
                            | {"TableName": "", "Nullable": "UNKNOWN", "CaseSensitive": False}
                            for name, kind in columns
                        ],
                    }
                ],
            },
            timeout=10,
        ).raise_for_status()

    def athena_queries(self) -> list[str]:
        athena = self.clients.athena
        ids = athena.list_query_executions(WorkGroup=self.spec.athena_workgroup)["QueryExecutionIds"]
        return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]


class Invoke:
    """Calls an event handler of the app by its name, with the event AWS would deliver to it."""

    def __init__(self, client: Client, stack: InProcessStack) -> None:
        self._client = client
        self._stack = stack

    def sqs(self, handler: str, *bodies: str) -> Any:
        """As Lambda's SQS event source mapping: one record per body."""
        event = self._client.events.generate_sqs_event(list(bodies))
        return self._client.lambda_.invoke(handler, event).payload

    def schedule(self, handler: str) -> Any:
        """As the EventBridge schedule rule does."""
        spec = self._stack.spec
        event = self._client.events.generate_cw_event(
            source="aws.events",
            detail_type="Scheduled Event",
            detail={},
            resources=[f"arn:aws:events:{spec.region}:{spec.account_id}:rule/{spec.schedules[0].name}"],
            region=spec.region,
        )
        return self._client.lambda_.invoke(handler, event).payload

    def until_ended(self, execution_arn: str, handlers: Mapping[str, str], timeout_s: float = 20.0) -> str:
        """Deliver every job on the queues of ``handlers`` (queue key -> handler) to its handler, as
        the event source mappings do, until the execution ends; returns its status."""
        deadline = time.monotonic() + timeout_s
        while (status := self._stack.execution_status(execution_arn)) == "RUNNING":
            delivered = 0
            for queue_key, handler in handlers.items():
                for body in self._stack.messages(queue_key):
                    self.sqs(handler, body)
                    delivered += 1
            if not delivered:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{execution_arn} still running after {timeout_s} s")
                time.sleep(0.02)
        return status


def start_stack(config: LocalCloudConfig) -> InProcessStack:
    """Create the stack of ``config`` in the active ``mock_aws`` and compute the app's environment."""
    cloud = LocalCloud(config)
    cloud.clients = clients = aws_clients(config.region)
    # queue URLs as AWS spells them (no endpoint): what moto in-process answers
    spec = stack_spec(
        config.stack_name,
        config.region,
        cloud.clients_account_id(),
        config.tuning,
        lake=config.lake,
        bridge=config.bridge,
    )
    cloud.spec = spec
    queue_urls = bootstrap(spec, clients, _SFTP_KEY_PLACEHOLDER)
    # Terraform creates the workgroup the AWS query engine runs in; the local runtime has no need
    clients.athena.create_work_group(Name=spec.athena_workgroup, Configuration={})
    unused = Path("/nonexistent")
    environment = cloud.runtime_environment(
        queue_urls, MqttClientOptions("127.0.0.1", 8883, unused, unused, unused, "unused")
    )
    assert cloud.bridge_settings is not None and cloud.lake_settings is not None
    environment |= cloud.bridge_settings.model_copy(update={"site_publish": "iot-data"}).to_env()
    environment |= cloud.lake_settings.model_copy(update={"query_engine": "athena"}).to_env()
    for name in _SERVER_ONLY:
        environment.pop(name, None)
    return InProcessStack(spec, clients, queue_urls, environment)
