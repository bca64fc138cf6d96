"""Create the stack's resources in a local cloud (moto, LocalStack) from :mod:`meterflow.localcloud.stack`.

Idempotent: running it against a cloud that already has the resources updates what can change
(state machine definitions, queue attributes) and leaves data alone.
"""

from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from meterflow.aws.clients import AwsClients
from meterflow.localcloud.stack import StackSpec

logger = logging.getLogger("meterflow.bootstrap")

# moto and LocalStack accept any role; in AWS, Terraform creates the real least-privilege roles.
_LOCAL_ROLE_ARN = "arn:aws:iam::{account}:role/{stack}-local-states"


def bootstrap(spec: StackSpec, clients: AwsClients, sftp_private_key_pem: str) -> dict[str, str]:
    """Create every resource of ``spec``; returns the queue URLs by key."""
    for bucket in spec.buckets:
        try:
            if spec.region == "us-east-1":
                clients.s3.create_bucket(Bucket=bucket.name)
            else:
                clients.s3.create_bucket(
                    Bucket=bucket.name, CreateBucketConfiguration={"LocationConstraint": spec.region}
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise
        clients.s3.put_public_access_block(
            Bucket=bucket.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    queue_urls: dict[str, str] = {}
    for queue in spec.queues:
        dlq_url = clients.sqs.create_queue(
            QueueName=queue.dlq_name,
            Attributes={"MessageRetentionPeriod": str(queue.dlq_message_retention_seconds)},
        )["QueueUrl"]
        dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(queue.message_retention_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        }
        url = clients.sqs.create_queue(QueueName=queue.name)["QueueUrl"]
        clients.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        queue_urls[queue.key] = url

    existing_tables = set(clients.dynamodb.list_tables()["TableNames"])
    for table in spec.tables:
        if table.name not in existing_tables:
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

    secret = spec.secret("sftp_private_key")
    try:
        clients.secretsmanager.create_secret(
            Name=secret.name, Description=secret.description, SecretString=sftp_private_key_pem
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise
        clients.secretsmanager.put_secret_value(SecretId=secret.name, SecretString=sftp_private_key_pem)

    for topic in spec.topics:
        clients.sns.create_topic(Name=topic.name)

    queue_arns = {key: spec.queue_arn(key) for key in queue_urls}
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

    for rule in spec.event_rules:
        clients.events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.event_pattern), State="ENABLED")
        clients.events.put_targets(
            Rule=rule.name, Targets=[{"Id": rule.queue_key, "Arn": queue_arns[rule.queue_key]}]
        )

    role_arn = _LOCAL_ROLE_ARN.format(account=spec.account_id, stack=spec.stack_name)
    for machine in spec.state_machines:
        definition = machine.render()
        arn = spec.state_machine_arn(machine.key)
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
    return queue_urls
