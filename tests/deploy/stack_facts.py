"""What a deployed Meterflow stack is, read back from a cloud with boto3.

The same reader runs against the stack ``terraform apply`` created and the stack the local runtime
creates (``meterflow.localcloud.bootstrap``), so the two are compared by what the cloud holds, not by
what either side meant to create.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from meterflow.aws.clients import AwsClients

# A queue URL names its queue by account and name; the host differs between clouds and endpoints.
QUEUE_URL = re.compile(r"https?://[^/\"]+/(?P<account>[0-9]{12})/(?P<name>[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class QueueFacts:
    visibility_timeout_seconds: int
    message_retention_seconds: int
    dead_letter_queue: str | None
    max_receive_count: int | None


@dataclass(frozen=True)
class TableFacts:
    key_schema: tuple[tuple[str, str], ...]
    attribute_types: tuple[tuple[str, str], ...]
    ttl_attribute: str | None
    billing_mode: str


@dataclass(frozen=True)
class NotificationFacts:
    queue: str
    prefix: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class EventRuleFacts:
    pattern: str
    targets: tuple[str, ...]


def _named(names: list[str], prefix: str) -> list[str]:
    return sorted(name for name in names if name.startswith(prefix))


def normalize_queue_urls(text: str) -> str:
    """Queue URLs in a definition, as ``sqs://<account>/<name>`` whatever the endpoint."""
    return QUEUE_URL.sub(lambda match: f"sqs://{match['account']}/{match['name']}", text)


def queue_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


class StackReader:
    """Reads the resources of the stack named ``stack_name`` from the cloud ``clients`` talk to."""

    def __init__(self, clients: AwsClients, stack_name: str) -> None:
        self._clients = clients
        self._prefix = f"{stack_name}-"
        self._stack_name = stack_name

    def queues(self) -> dict[str, QueueFacts]:
        sqs = self._clients.sqs
        urls = sqs.list_queues(QueueNamePrefix=self._prefix).get("QueueUrls", [])
        facts: dict[str, QueueFacts] = {}
        for url in urls:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attributes["RedrivePolicy"]) if attributes.get("RedrivePolicy") else None
            facts[url.rsplit("/", 1)[-1]] = QueueFacts(
                visibility_timeout_seconds=int(attributes["VisibilityTimeout"]),
                message_retention_seconds=int(attributes["MessageRetentionPeriod"]),
                dead_letter_queue=queue_name(redrive["deadLetterTargetArn"]) if redrive else None,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        return facts

    def tables(self) -> dict[str, TableFacts]:
        dynamodb = self._clients.dynamodb
        facts: dict[str, TableFacts] = {}
        for name in _named(dynamodb.list_tables()["TableNames"], self._prefix):
            table = dynamodb.describe_table(TableName=name)["Table"]
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            facts[name] = TableFacts(
                key_schema=tuple((key["AttributeName"], key["KeyType"]) for key in table["KeySchema"]),
                attribute_types=tuple(
                    sorted(
                        (item["AttributeName"], item["AttributeType"])
                        for item in table["AttributeDefinitions"]
                    )
                ),
                ttl_attribute=ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
                billing_mode=table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
            )
        return facts

    def buckets(self) -> list[str]:
        return _named([bucket["Name"] for bucket in self._clients.s3.list_buckets()["Buckets"]], self._prefix)

    def notifications(self) -> dict[str, tuple[NotificationFacts, ...]]:
        facts: dict[str, tuple[NotificationFacts, ...]] = {}
        for bucket in self.buckets():
            configuration = self._clients.s3.get_bucket_notification_configuration(Bucket=bucket)
            queues = configuration.get("QueueConfigurations", [])
            if not queues:
                continue
            facts[bucket] = tuple(
                sorted(
                    NotificationFacts(
                        queue=queue_name(item["QueueArn"]),
                        prefix=next(
                            (
                                rule["Value"]
                                for rule in item.get("Filter", {}).get("Key", {}).get("FilterRules", [])
                                if rule["Name"].lower() == "prefix"
                            ),
                            "",
                        ),
                        events=tuple(sorted(item["Events"])),
                    )
                    for item in queues
                )
            )
        return facts

    def event_rules(self) -> dict[str, EventRuleFacts]:
        """Rules on the default bus with an event pattern (schedules are read by ``schedules``)."""
        events = self._clients.events
        facts: dict[str, EventRuleFacts] = {}
        for rule in events.list_rules(NamePrefix=self._prefix)["Rules"]:
            if "EventPattern" not in rule:
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            facts[rule["Name"]] = EventRuleFacts(
                pattern=json.dumps(json.loads(rule["EventPattern"]), sort_keys=True),
                targets=tuple(sorted(queue_name(target["Arn"]) for target in targets)),
            )
        return facts

    def schedules(self) -> dict[str, str]:
        """Scheduled rules: name -> schedule expression."""
        rules = self._clients.events.list_rules(NamePrefix=self._prefix)["Rules"]
        return {rule["Name"]: rule["ScheduleExpression"] for rule in rules if "ScheduleExpression" in rule}

    def state_machines(self) -> dict[str, Any]:
        """Name -> definition (parsed JSON, queue URLs normalized)."""
        sfn = self._clients.stepfunctions
        facts: dict[str, Any] = {}
        for machine in sfn.list_state_machines()["stateMachines"]:
            if not machine["name"].startswith(self._prefix):
                continue
            definition = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["definition"]
            facts[machine["name"]] = json.loads(normalize_queue_urls(definition))
        return facts

    def secrets(self) -> list[str]:
        listed = self._clients.secretsmanager.list_secrets()["SecretList"]
        return _named([secret["Name"] for secret in listed], f"{self._stack_name}/")

    def topics(self) -> list[str]:
        arns = [topic["TopicArn"] for topic in self._clients.sns.list_topics()["Topics"]]
        return _named([arn.rsplit(":", 1)[-1] for arn in arns], self._prefix)

    def aspects(self) -> dict[str, Any]:
        """Every aspect the local runtime also creates, by name."""
        return {
            "queues": self.queues(),
            "tables": self.tables(),
            "buckets": self.buckets(),
            "notifications": self.notifications(),
            "event_rules": self.event_rules(),
            "state_machines": self.state_machines(),
            "secrets": self.secrets(),
            "topics": self.topics(),
        }


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Readable differences between two nested facts (dicts, lists, dataclasses, scalars)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                found.append(f"{path}/{key}: missing (expected {expected[key]!r})")
            elif key not in expected:
                found.append(f"{path}/{key}: unexpected {actual[key]!r}")
            else:
                found.extend(differences(expected[key], actual[key], f"{path}/{key}"))
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            difference
            for index, (left, right) in enumerate(zip(expected, actual, strict=True))
            for difference in differences(left, right, f"{path}[{index}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]
