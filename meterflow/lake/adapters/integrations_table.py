"""The integrations table (DynamoDB): one item per input-adapter integration."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from meterflow.lake.domain.integrations import Integration

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _to_item(integration: Integration) -> dict[str, Any]:
    data = integration.model_dump(exclude_none=True)
    return {name: _SERIALIZER.serialize(value) for name, value in data.items()}


def _from_item(item: dict[str, Any]) -> Integration:
    data = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    # DynamoDB numbers come back as Decimal
    return Integration.parse({k: int(v) if type(v).__name__ == "Decimal" else v for k, v in data.items()})


class DynamoDbIntegrations:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, integration_id: str) -> Integration | None:
        item = self._client.get_item(
            TableName=self._table, Key={"integration_id": {"S": integration_id}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _from_item(item)

    def put(self, integration: Integration) -> None:
        self._client.put_item(TableName=self._table, Item=_to_item(integration))

    def all(self) -> list[Integration]:
        items: list[Integration] = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            items.extend(_from_item(item) for item in page.get("Items", []))
        return sorted(items, key=lambda integration: integration.integration_id)

    def reset(self, integration_id: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"integration_id": {"S": integration_id}},
                # A new attempt: its executions get names of their own (Integration.execution_name).
                UpdateExpression=(
                    "SET #state = :idle, attempt = if_not_exists(attempt, :zero) + :one REMOVE failure_reason"
                ),
                ConditionExpression="#state = :failed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":idle": {"S": "idle"},
                    ":failed": {"S": "failed"},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
