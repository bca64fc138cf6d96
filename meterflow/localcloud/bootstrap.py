"""Create the stack's resources in a local cloud (moto, LocalStack) from :mod:`meterflow.localcloud.stack`.

Idempotent: running it against a cloud that already has the resources updates what can change
(state machine definitions, queue attributes) and leaves data alone.
"""

from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from meterflow.aws.clients import AwsClients
from meterflow.localcloud.stack import (
    EventRuleSpec,
    QueueSpec,
    SecretSpec,
    StackSpec,
    StateMachineSpec,
    TableSpec,
)

logger = logging.getLogger("meterflow.bootstrap")

# moto and LocalStack accept any role; in AWS, Terraform creates the real least-privilege roles.
_LOCAL_ROLE_ARN = "arn:aws:iam::{account}:role/{stack}-local-states"


def bootstrap(spec: StackSpec, clients: AwsClients, sftp_private_key_pem: str) -> dict[str, str]:
    """Create every resource of ``spec``; returns the queue URLs by key."""
    for bucket in spec.buckets:
        _create_bucket(clients, bucket.name, spec.region)
    queue_urls = {queue.key: _create_queue(clients, queue) for queue in spec.queues}
    existing_tables = set(clients.dynamodb.list_tables()["TableNames"])
    for table in spec.tables:
        _create_table(clients, table, exists=table.name in existing_tables)
    _put_secret(clients, spec.secret("sftp_private_key"), sftp_private_key_pem)
    for topic in spec.topics:
        clients.sns.create_topic(Name=topic.name)
    queue_arns = {key: spec.queue_arn(key) for key in queue_urls}
    _configure_bucket_notifications(clients, spec, queue_arns)
    for rule in spec.event_rules:
        _put_event_rule(clients, rule, queue_arns)
    role_arn = _LOCAL_ROLE_ARN.format(account=spec.account_id, stack=spec.stack_name)
    for machine in spec.state_machines:
        _put_state_machine(clients, machine, spec.state_machine_arn(machine.key), role_arn)
    return queue_urls


def _create_bucket(clients: AwsClients, name: str, region: str) -> None:
    """The bucket (kept when it exists), with every kind of public access blocked."""
    try:
        if region == "us-east-1":
            clients.s3.create_bucket(Bucket=name)
        else:
            clients.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    clients.s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _create_queue(clients: AwsClients, queue: QueueSpec) -> str:
    """The queue and its dead-letter queue, with their attributes as ``queue`` says; its URL."""
    dlq_url = clients.sqs.create_queue(
        QueueName=queue.dlq_name,
        Attributes={"MessageRetentionPeriod": str(queue.dlq_message_retention_seconds)},
    )["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout_seconds),
        "MessageRetentionPeriod": str(queue.message_retention_seconds),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
        ),
    }
    url: str = clients.sqs.create_queue(QueueName=queue.name)["QueueUrl"]
    clients.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _create_table(clients: AwsClients, table: TableSpec, *, exists: bool) -> None:
    """An on-demand table keyed as ``table`` says (unless it ``exists``), with its TTL enabled."""
    if not exists:
        key_schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
        key_types = [{"AttributeName": table.hash_key, "AttributeType": "S"}]
        if table.range_key:
            key_schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
            key_types.append({"AttributeName": table.range_key, "AttributeType": "S"})
        clients.dynamodb.create_table(
            TableName=table.name,
            KeySchema=key_schema,
            AttributeDefinitions=key_types,
            BillingMode="PAY_PER_REQUEST",
        )
        clients.dynamodb.get_waiter("table_exists").wait(TableName=table.name)
    if table.ttl_attribute:
        try:
            clients.dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        except ClientError as exc:
            if "already enabled" not in str(exc).lower():
                raise


def _put_secret(clients: AwsClients, secret: SecretSpec, value: str) -> None:
    """Create the secret, or give an existing one ``value`` as its new version."""
    try:
        clients.secretsmanager.create_secret(
            Name=secret.name, Description=secret.description, SecretString=value
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise
        clients.secretsmanager.put_secret_value(SecretId=secret.name, SecretString=value)


def _configure_bucket_notifications(clients: AwsClients, spec: StackSpec, queue_arns: dict[str, str]) -> None:
    """Per bucket, one configuration announcing new objects of each notified prefix on its queue."""
    for bucket_key in {notification.bucket_key for notification in spec.notifications}:
        clients.s3.put_bucket_notification_configuration(
            Bucket=spec.bucket(bucket_key).name,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": f"{notification.queue_key}-{notification.prefix.strip('/')}",
                        "QueueArn": queue_arns[notification.queue_key],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": notification.prefix}]}
                        },
                    }
                    for notification in spec.notifications
                    if notification.bucket_key == bucket_key
                ]
            },
        )


def _put_event_rule(clients: AwsClients, rule: EventRuleSpec, queue_arns: dict[str, str]) -> None:
    clients.events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.event_pattern), State="ENABLED")
    clients.events.put_targets(
        Rule=rule.name, Targets=[{"Id": rule.queue_key, "Arn": queue_arns[rule.queue_key]}]
    )


def _put_state_machine(clients: AwsClients, machine: StateMachineSpec, arn: str, role_arn: str) -> None:
    """Create the state machine, or update an existing one's definition."""
    definition = machine.render()
    try:
        clients.stepfunctions.describe_state_machine(stateMachineArn=arn)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "StateMachineDoesNotExist":
            raise
        clients.stepfunctions.create_state_machine(
            name=machine.name,
            definition=definition,
            roleArn=role_arn,
            tracingConfiguration={"enabled": True},
        )
    else:
        clients.stepfunctions.update_state_machine(stateMachineArn=arn, definition=definition)
    logger.info("state machine %s ready", machine.name)
