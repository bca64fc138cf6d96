"""boto3 clients, built once per runtime by its wiring module.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) by itself, so the same
code talks to AWS, LocalStack or the embedded moto server without knowing which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=70,  # above SQS long polling's 20 s and S3 part uploads
    max_pool_connections=32,
)


@dataclass(frozen=True)
class AwsClients:
    s3: Any
    sqs: Any
    dynamodb: Any
    stepfunctions: Any
    secretsmanager: Any
    events: Any = None
    sns: Any = None
    athena: Any = None


def aws_clients(region: str, session: boto3.session.Session | None = None) -> AwsClients:
    session = session or boto3.session.Session(region_name=region)

    def client(name: str) -> Any:
        return session.client(name, region_name=region, config=_CLIENT_CONFIG)  # type: ignore[call-overload]

    return AwsClients(
        s3=client("s3"),
        sqs=client("sqs"),
        dynamodb=client("dynamodb"),
        stepfunctions=client("stepfunctions"),
        secretsmanager=client("secretsmanager"),
        events=client("events"),
        sns=client("sns"),
        athena=client("athena"),
    )
