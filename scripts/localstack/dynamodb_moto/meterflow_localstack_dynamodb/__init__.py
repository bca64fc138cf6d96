"""DynamoDB for LocalStack without DynamoDB Local: every operation goes to LocalStack's bundled moto.

LocalStack's own DynamoDB provider forwards to DynamoDB Local (Java, downloaded at first use),
which cannot be fetched here. This provider implements no operation itself, so each one falls
through to moto, as for LocalStack's other moto-backed services, with one difference: the calls
are serialized. DynamoDB applies each (conditional) write to an item atomically; moto checks a
condition and then writes without a lock, so two concurrent conditional updates of one item (a
job cancelled while its progress is recorded) could both pass their checks and the later write
undo the earlier. LocalStack serves requests on many threads, so it does happen.
"""

import threading
from typing import Any

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

_ONE_AT_A_TIME = threading.Lock()


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Every method raises NotImplementedError (the generated skeleton's), so moto answers."""


def _serialized_moto(context: Any, request: Any) -> Any:
    from localstack.services.moto import call_moto

    with _ONE_AT_A_TIME:
        return call_moto(context)


@aws_provider(api="dynamodb", name="meterflow_moto")
def dynamodb_meterflow_moto() -> Service:
    from localstack.aws.forwarder import ForwardingFallbackDispatcher

    return Service.for_provider(
        MotoDynamoDBProvider(),
        dispatch_table_factory=lambda provider: ForwardingFallbackDispatcher(provider, _serialized_moto),
    )
