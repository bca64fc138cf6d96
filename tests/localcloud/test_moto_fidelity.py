"""The embedded moto server behaves as AWS where Terraform and the runtime read it back.

Each test states the AWS behaviour a fix in ``meterflow.localcloud.moto_fidelity`` restores, and
fails on an unpatched moto 5.2.5 (a 500 for an unimplemented action, a missing attribute, a
custom error code or a string where AWS sends a timestamp).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from meterflow.localcloud import moto_fidelity
from meterflow.localcloud.net import free_port

REGION = "us-east-1"
VALID_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})

ClientFactory = Callable[[str], Any]


@pytest.fixture(scope="module")
def client() -> Iterator[ClientFactory]:
    """GIVEN the project's moto server (fidelity fixes applied) on a free port."""
    moto_fidelity.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()

    def make(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="fidelity",
            aws_secret_access_key="fidelity",
        )

    yield make
    server.stop()


def test_iot_thing_type_keeps_the_tags_it_was_created_with(client: ClientFactory) -> None:
    iot = client("iot")
    # WHEN a thing type is created with tags, then tagged and untagged
    arn = iot.create_thing_type(thingTypeName="fidelity-type", tags=[{"Key": "stack", "Value": "mf"}])[
        "thingTypeArn"
    ]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "owner", "Value": "grid"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["stack"])
    # THEN ListTagsForResource lists what is left
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "owner", "Value": "grid"}]


def test_iot_topic_rule_tags_come_from_the_tagging_header(client: ClientFactory) -> None:
    iot = client("iot")
    # WHEN a rule is created with tags (sent as the x-amz-tagging header)
    iot.create_topic_rule(
        ruleName="fidelity_rule",
        topicRulePayload={"sql": "SELECT * FROM 'a/b'", "actions": [], "awsIotSqlVersion": "2016-03-23"},
        tags="stack=mf&tier=test",
    )
    arn = iot.get_topic_rule(ruleName="fidelity_rule")["ruleArn"]
    # THEN they are listed, and they go with the rule
    assert sorted(tag["Key"] for tag in iot.list_tags_for_resource(resourceArn=arn)["tags"]) == [
        "stack",
        "tier",
    ]
    iot.delete_topic_rule(ruleName="fidelity_rule")
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_iot_policy_keeps_its_tags(client: ClientFactory) -> None:
    iot = client("iot")
    document = json.dumps({"Version": "2012-10-17", "Statement": []})
    arn = iot.create_policy(
        policyName="fidelity-policy", policyDocument=document, tags=[{"Key": "a", "Value": "b"}]
    )["policyArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "a", "Value": "b"}]


@pytest.mark.parametrize(
    ("definition", "result"),
    [(VALID_DEFINITION, "OK"), (json.dumps({"StartAt": "Missing", "States": {}}), "FAIL"), ("{", "FAIL")],
    ids=["valid", "no-states", "not-json"],
)
def test_stepfunctions_validates_definitions(client: ClientFactory, definition: str, result: str) -> None:
    answer = client("stepfunctions").validate_state_machine_definition(definition=definition, type="STANDARD")
    assert answer["result"] == result
    assert bool(answer["diagnostics"]) == (result == "FAIL")


def test_sqs_attribute_update_keeps_the_queue_policy(client: ClientFactory) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="fidelity-policy")["QueueUrl"]
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    # WHEN another attribute is set
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # THEN the policy is still there
    assert json.loads(attributes["Policy"]) == json.loads(policy)
    assert attributes["VisibilityTimeout"] == "45"
    # AND an empty Policy removes it
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_sqs_returns_the_redrive_allow_policy(client: ClientFactory) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="fidelity-dlq")["QueueUrl"]
    assert (
        "RedriveAllowPolicy"
        not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    )
    allow = json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:us-east-1:123456789012:q"]}
    )
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": allow})
    named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
    assert json.loads(named["RedriveAllowPolicy"]) == json.loads(allow)
    # AND an empty value removes it (how Terraform deletes it)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})
    assert (
        "RedriveAllowPolicy"
        not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    )


def test_kms_rotation_status_has_its_period(client: ClientFactory) -> None:
    kms = client("kms")
    default_key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=default_key)
    assert kms.get_key_rotation_status(KeyId=default_key)["RotationPeriodInDays"] == 365
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
    assert kms.get_key_rotation_status(KeyId=key)["RotationPeriodInDays"] == 180


def test_transfer_reports_missing_resources_as_resource_not_found(client: ClientFactory) -> None:
    transfer = client("transfer")
    server_id = transfer.create_server()["ServerId"]
    for call in (
        lambda: transfer.describe_user(ServerId=server_id, UserName="nobody"),
        lambda: transfer.describe_server(ServerId="s-00000000000000000"),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_transfer_date_imported_is_a_timestamp(client: ClientFactory) -> None:
    transfer = client("transfer")
    server_id = transfer.create_server()["ServerId"]
    transfer.create_user(ServerId=server_id, UserName="sftp-user", Role="arn:aws:iam::123456789012:role/r")
    transfer.import_ssh_public_key(
        ServerId=server_id,
        UserName="sftp-user",
        SshPublicKeyBody="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB fidelity",
    )
    keys = transfer.describe_user(ServerId=server_id, UserName="sftp-user")["User"]["SshPublicKeys"]
    assert isinstance(keys[0]["DateImported"], datetime)


def test_stepfunctions_lists_published_versions_newest_first(client: ClientFactory) -> None:
    sfn = client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/fidelity"
    unpublished = sfn.create_state_machine(name="fidelity-draft", definition=VALID_DEFINITION, roleArn=role)
    assert (
        sfn.list_state_machine_versions(stateMachineArn=unpublished["stateMachineArn"])[
            "stateMachineVersions"
        ]
        == []
    )
    arn = sfn.create_state_machine(
        name="fidelity-versions", definition=VALID_DEFINITION, roleArn=role, publish=True
    )["stateMachineArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=VALID_DEFINITION, publish=True)
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [version["stateMachineVersionArn"] for version in versions] == [f"{arn}:2", f"{arn}:1"]


def test_sqs_redrive_policy_is_compact_json(client: ClientFactory) -> None:
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="fidelity-compact-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="fidelity-compact")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
        "RedrivePolicy"
    ]
    assert policy == json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}, separators=(",", ":"))


def test_iot_endpoint_is_stable(client: ClientFactory) -> None:
    iot = client("iot")
    first = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == first


def test_lambda_keeps_its_logging_config(client: ClientFactory) -> None:
    lambda_client = client("lambda")
    iam = client("iam")
    role = iam.create_role(
        RoleName="fidelity-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fidelity@sha256:" + "ab" * 32
    for name, logging in (
        ("fidelity-default-logs", None),
        ("fidelity-own-logs", {"LogFormat": "Text", "LogGroup": "own"}),
    ):
        lambda_client.create_function(
            FunctionName=name,
            Role=role,
            PackageType="Image",
            Code={"ImageUri": image},
            **({"LoggingConfig": logging} if logging else {}),
        )
    assert lambda_client.get_function_configuration(FunctionName="fidelity-default-logs")[
        "LoggingConfig"
    ] == {
        "LogFormat": "Text",
        "LogGroup": "/aws/lambda/fidelity-default-logs",
    }
    assert (
        lambda_client.get_function(FunctionName="fidelity-own-logs")["Configuration"]["LoggingConfig"][
            "LogGroup"
        ]
        == "own"
    )


def test_transfer_user_without_posix_profile_has_none(client: ClientFactory) -> None:
    transfer = client("transfer")
    server_id = transfer.create_server()["ServerId"]
    transfer.create_user(ServerId=server_id, UserName="no-posix", Role="arn:aws:iam::123456789012:role/r")
    assert "PosixProfile" not in transfer.describe_user(ServerId=server_id, UserName="no-posix")["User"]


def test_dynamodb_conditional_updates_of_one_item_do_not_interleave(client: ClientFactory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName="fidelity-counter",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="fidelity-counter", Item={"id": {"S": "job"}, "version": {"N": "0"}})

    def bump(_: int) -> int:
        # optimistic locking: read the version, write version + 1 only if it is still the one read
        for attempt in range(200):
            version = dynamodb.get_item(TableName="fidelity-counter", Key={"id": {"S": "job"}})["Item"][
                "version"
            ]["N"]
            try:
                dynamodb.update_item(
                    TableName="fidelity-counter",
                    Key={"id": {"S": "job"}},
                    UpdateExpression="SET version = :next",
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={
                        ":read": {"N": version},
                        ":next": {"N": str(int(version) + 1)},
                    },
                )
                return attempt
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
        raise AssertionError("no update succeeded")

    # WHEN 8 threads each add one under a condition, 25 times
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(200)))
    # THEN no successful update was lost
    item = dynamodb.get_item(TableName="fidelity-counter", Key={"id": {"S": "job"}})["Item"]
    assert item["version"]["N"] == "200"
