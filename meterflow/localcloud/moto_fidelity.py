"""Fidelity fixes for the embedded moto server, applied only where the project starts moto itself.

moto 5.2.5 drops the ``cause`` of SendTaskFailure before it reaches its Step Functions interpreter,
so a Catch sees ``"Cause": null`` where AWS (and LocalStack) pass the worker's message through.
Our failure reasons depend on it, so the embedded server gets the one-line fix.

moto also lists an execution as RUNNING a moment before (and after) its interpreter exists; a task
token answered in that moment fails with an AttributeError (HTTP 500) for every other execution.
Such executions cannot own the token, so answering a token reads each execution's interpreter
once and skips those without one (checking first and reading later still raced).

Performance: moto copies an object's whole body for every GET, ranged or not (two 127 MB copies
to serve a 4 KB range). Objects are kept in memory (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, set by the
local cloud) and their body is returned without copying, so a ranged GET costs its range. And
moto lists its own package directory (about 170 stat calls) on every request to route it; the list
never changes while the server runs, so it is computed once.

Deployment fidelity: ``terraform apply`` of ``terraform/`` against the embedded server (the apply
test) needs the AWS behaviour the provider reads back. Each fix below names what it restores:

- IoT ``TagResource`` / ``UntagResource`` / ``ListTagsForResource`` (moto: not implemented, HTTP
  500), with the tags given at creation of thing types, policies and topic rules;
- Step Functions ``ValidateStateMachineDefinition`` (moto: not implemented): the definition is run
  through the ASL parser, as AWS does, and a parse error is a FAIL diagnostic; and
  ``ListStateMachineVersions`` (moto: not implemented) lists the published versions, newest first;
- SQS ``RedriveAllowPolicy`` is returned by ``GetQueueAttributes`` once set, and a
  ``SetQueueAttributes`` call that does not name ``Policy`` leaves the queue's policy alone (moto
  drops both);
- KMS ``GetKeyRotationStatus`` returns ``RotationPeriodInDays`` (365 unless set by
  ``EnableKeyRotation``);
- Transfer Family reports missing servers, users and keys as ``ResourceNotFoundException`` and
  ``DateImported`` as a timestamp (moto: custom codes and a string), and a user without a POSIX
  profile has none (moto: one of nulls);
- SQS returns ``RedrivePolicy`` as compact JSON, as AWS does (moto: with spaces, which the provider
  reads as a change on every plan);
- IoT ``DescribeEndpoint`` names one endpoint per account, region and type (moto: a new random one
  on every call);
- Lambda keeps and returns ``LoggingConfig`` (default: text to ``/aws/lambda/<name>``).

Runtime fidelity: DynamoDB applies each (conditional) write to an item atomically; moto checks a
condition and then writes without a lock, and its server answers requests on many threads, so two
concurrent conditional updates of one item (a job cancelled while its progress is recorded) could
both pass and the later undo the earlier. DynamoDB requests are served one at a time.
"""

from __future__ import annotations

from typing import Any


def apply() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]

    _answer_tokens_race_free()

    import io

    from moto.s3.models import FakeKey

    copying_value = FakeKey.value

    def value_without_copy(self: Any) -> bytes:
        in_memory = getattr(self._value_buffer, "_file", None)
        if isinstance(in_memory, io.BytesIO):
            with self.lock:
                # bytes are immutable: after its first call getvalue() shares one object, no copy
                return in_memory.getvalue()
        return bytes(copying_value.fget(self))  # type: ignore[attr-defined]

    FakeKey.value = property(value_without_copy, copying_value.fset)  # type: ignore[method-assign,assignment,attr-defined]

    from moto import backends

    moto_modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: moto_modules

    _iot_tags()
    _stepfunctions_validate_definition()
    _sqs_attributes_kept()
    _kms_rotation_period()
    _transfer_errors_and_dates()
    _sqs_compact_redrive_policy()
    _iot_stable_endpoint()
    _lambda_logging_config()
    _dynamodb_atomic_requests()


def _answer_tokens_race_free() -> None:
    """moto answers a token by walking the executions and calling ``execution.exec_worker.env...``;
    an execution that ends (or starts) meanwhile has no worker or no environment and the call fails
    with an AttributeError (HTTP 500) for every other execution's token. Read each once, skip None."""
    import importlib

    # moto's internals, untyped for our purposes; the names are those its own methods use
    parser: Any = importlib.import_module("moto.stepfunctions.parser.models")
    backend = parser.StepFunctionsParserBackend

    def answer(self: Any, status: Any, deliver: Any) -> None:
        for execution in backend._get_executions(self, status):
            worker = getattr(execution, "exec_worker", None)
            environment = getattr(worker, "env", None)
            if environment is None:
                continue  # no interpreter (yet, or any more): it cannot own the token
            try:
                if deliver(environment.callback_pool_manager):
                    return
            except parser.CallbackNotifyConsumerError as consumer_error:
                if isinstance(consumer_error, parser.CallbackConsumerTimeout):
                    raise parser.TaskTimedOut() from consumer_error
                raise parser.TaskDoesNotExist() from consumer_error
        raise parser.InvalidToken()

    def send_task_heartbeat(self: Any, task_token: Any) -> Any:
        answer(self, parser.ExecutionStatus.RUNNING, lambda pool: pool.heartbeat(callback_id=task_token))

    def send_task_success(self: Any, task_token: Any, outcome: str) -> Any:
        success = parser.CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        answer(
            self,
            parser.ExecutionStatus.RUNNING,
            lambda pool: pool.notify(callback_id=task_token, outcome=success),
        )

    def send_task_failure(self: Any, task_token: Any, error: Any = None, cause: Any = None) -> Any:
        failure = parser.CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        answer(self, None, lambda pool: pool.notify(callback_id=task_token, outcome=failure))
        return parser.SendTaskFailureOutput()

    backend.send_task_heartbeat = send_task_heartbeat
    backend.send_task_success = send_task_success
    backend.send_task_failure = send_task_failure


def _iot_tags() -> None:
    """IoT keeps tags per resource ARN: given at creation (``tags`` in the body, or the
    ``x-amz-tagging`` header of CreateTopicRule) or by TagResource, listed by ListTagsForResource."""
    from urllib.parse import parse_qsl

    from moto.core.responses import ActionResult, EmptyResult
    from moto.iot.responses import IoTResponse
    from moto.utilities.tagging_service import TaggingService

    def tags_of(response: Any) -> Any:
        backend = response.iot_backend
        tagger = backend.__dict__.get("_fidelity_tags")
        if tagger is None:
            tagger = backend.__dict__.setdefault("_fidelity_tags", TaggingService(key_name="Key"))
        return tagger

    def arn(response: Any, kind: str, name: str) -> str:
        backend = response.iot_backend
        return f"arn:aws:iot:{backend.region_name}:{backend.account_id}:{kind}/{name}"

    def list_tags_for_resource(self: Any) -> Any:
        tags = tags_of(self).list_tags_for_resource(self._get_param("resourceArn"))["Tags"]
        return ActionResult({"tags": tags})

    def tag_resource(self: Any) -> Any:
        tags_of(self).tag_resource(self._get_param("resourceArn"), self._get_param("tags") or [])
        return EmptyResult()

    def untag_resource(self: Any) -> Any:
        tags_of(self).untag_resource_using_names(
            self._get_param("resourceArn"), self._get_param("tagKeys") or []
        )
        return EmptyResult()

    IoTResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    IoTResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
    IoTResponse.untag_resource = untag_resource  # type: ignore[attr-defined]

    def tagged_on_create(create: Any, kind: str, name_param: str, tags: Any) -> Any:
        def create_and_tag(self: Any) -> Any:
            result = create(self)
            given = tags(self)
            if given:
                tags_of(self).tag_resource(arn(self, kind, self._get_param(name_param)), given)
            return result

        return create_and_tag

    def header_tags(response: Any) -> list[dict[str, str]]:
        header = response.headers.get("x-amz-tagging") or ""
        return [{"Key": key, "Value": value} for key, value in parse_qsl(header, keep_blank_values=True)]

    def forget_on_delete(delete: Any, kind: str, name_param: str) -> Any:
        def delete_and_untag(self: Any) -> Any:
            result = delete(self)
            tags_of(self).delete_all_tags_for_resource(arn(self, kind, self._get_param(name_param)))
            return result

        return delete_and_untag

    body_tags = lambda response: response._get_param("tags")  # noqa: E731
    for create_name, kind, name_param, tags in (
        ("create_thing_type", "thingtype", "thingTypeName", body_tags),
        ("create_policy", "policy", "policyName", body_tags),
        ("create_topic_rule", "rule", "ruleName", header_tags),
    ):
        setattr(
            IoTResponse,
            create_name,
            tagged_on_create(getattr(IoTResponse, create_name), kind, name_param, tags),
        )
    for delete_name, kind, name_param in (
        ("delete_thing_type", "thingtype", "thingTypeName"),
        ("delete_policy", "policy", "policyName"),
        ("delete_topic_rule", "rule", "ruleName"),
    ):
        setattr(
            IoTResponse, delete_name, forget_on_delete(getattr(IoTResponse, delete_name), kind, name_param)
        )


def _stepfunctions_validate_definition() -> None:
    """ValidateStateMachineDefinition parses the definition: OK, or FAIL with the parser's message."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self: Any) -> Any:
        try:
            AmazonStateLanguageParser.parse(self._get_param("definition"))
        except Exception as error:  # the parser raises several types; each is a diagnostic
            diagnostic = {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": str(error)}
            return ActionResult({"result": "FAIL", "diagnostics": [diagnostic], "truncated": False})
        return ActionResult({"result": "OK", "diagnostics": [], "truncated": False})

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition  # type: ignore[attr-defined]

    def list_state_machine_versions(self: Any) -> Any:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(machine.versions.values(), key=lambda version: version.version, reverse=True)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": version.arn, "creationDate": version.creation_date}
                    for version in versions
                ]
            }
        )

    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions  # type: ignore[attr-defined]


def _sqs_attributes_kept() -> None:
    """SetQueueAttributes changes only the attributes it names, and RedriveAllowPolicy is readable."""
    from moto.sqs.models import Queue

    Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]
    Queue.redrive_allow_policy = None  # type: ignore[attr-defined]
    set_attributes = Queue._set_attributes

    def set_named_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        policy = getattr(self, "policy", None)
        set_attributes(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy
        elif not attributes["Policy"]:
            self.policy = None  # an empty Policy removes it, as in AWS

    Queue._set_attributes = set_named_attributes  # type: ignore[method-assign]
    listed_attributes = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = listed_attributes.fget(self)  # type: ignore[attr-defined]
        if not result.get("RedriveAllowPolicy"):
            result.pop("RedriveAllowPolicy", None)  # never set, or removed with an empty value
        return result

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]


def _kms_rotation_period() -> None:
    """Automatic rotation has a period (RotationPeriodInDays, 90-2560, default 365)."""
    import json

    from moto.kms.responses import KmsResponse

    enable = KmsResponse.enable_key_rotation
    status = KmsResponse.get_key_rotation_status

    def enable_key_rotation(self: Any) -> str:
        result: str = enable(self)
        key = self.kms_backend.keys[self.kms_backend.get_key_id(self._get_param("KeyId"))]
        key.rotation_period_in_days = int(self._get_param("RotationPeriodInDays") or 365)
        return result

    def get_key_rotation_status(self: Any) -> str:
        result = json.loads(status(self))
        if result.get("KeyRotationEnabled"):
            key = self.kms_backend.keys[self.kms_backend.get_key_id(self._get_param("KeyId"))]
            result["RotationPeriodInDays"] = getattr(key, "rotation_period_in_days", 365)
        return json.dumps(result)

    KmsResponse.enable_key_rotation = enable_key_rotation  # type: ignore[method-assign]
    KmsResponse.get_key_rotation_status = get_key_rotation_status  # type: ignore[method-assign]


def _transfer_errors_and_dates() -> None:
    """Transfer Family: ResourceNotFoundException for every missing resource; DateImported a timestamp."""
    from moto.transfer import exceptions
    from moto.transfer.types import User

    for missing in (exceptions.ServerNotFound, exceptions.UserNotFound, exceptions.PublicKeyNotFound):
        original_init = missing.__init__

        def init(self: Any, *args: Any, _original: Any = original_init, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            self.error_type = "ResourceNotFoundException"
            body = getattr(self, "description", None)
            if isinstance(body, str) and body.startswith("{"):
                import json

                document = json.loads(body)
                document["__type"] = "ResourceNotFoundException"
                self.description = json.dumps(document)

        missing.__init__ = init  # type: ignore[method-assign]

    as_dict = User.to_dict

    def to_dict(self: Any) -> dict[str, Any]:
        user: dict[str, Any] = as_dict(self)
        for key in user.get("SshPublicKeys", []):
            if isinstance(key.get("DateImported"), str):
                key["DateImported"] = float(key["DateImported"])
        if not any(user.get("PosixProfile", {}).values()):
            user.pop("PosixProfile", None)
        return user

    User.to_dict = to_dict  # type: ignore[method-assign]


def _sqs_compact_redrive_policy() -> None:
    import json

    from moto.sqs.models import Queue

    spaced_attributes = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = spaced_attributes.fget(self)  # type: ignore[attr-defined]
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]


def _iot_stable_endpoint() -> None:
    from moto.iot.models import IoTBackend

    describe = IoTBackend.describe_endpoint

    def describe_endpoint(self: Any, endpoint_type: str) -> Any:
        known = self.__dict__.setdefault("_fidelity_endpoints", {})
        if endpoint_type not in known:
            known[endpoint_type] = describe(self, endpoint_type)
        self.endpoint = known[endpoint_type]
        return known[endpoint_type]

    IoTBackend.describe_endpoint = describe_endpoint  # type: ignore[method-assign]


def _lambda_logging_config() -> None:
    from moto.awslambda.models import LambdaFunction

    create = LambdaFunction.__init__
    configuration = LambdaFunction.get_configuration
    update = LambdaFunction.update_configuration

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        create(self, *args, **kwargs)
        spec = kwargs["spec"] if "spec" in kwargs else args[1]  # (account_id, spec, region, version)
        self.fidelity_logging_config = dict(spec.get("LoggingConfig") or {})

    def logging_config(self: Any) -> dict[str, Any]:
        default = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{self.function_name}"}
        return {**default, **getattr(self, "fidelity_logging_config", {})}

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = configuration(self, *args, **kwargs)
        result["LoggingConfig"] = logging_config(self)
        return result

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "LoggingConfig" in config_updates:
            self.fidelity_logging_config = dict(config_updates["LoggingConfig"] or {})
        result: dict[str, Any] = update(self, config_updates)
        result["LoggingConfig"] = logging_config(self)
        return result

    LambdaFunction.__init__ = init  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]


def _dynamodb_atomic_requests() -> None:
    import threading

    from moto.dynamodb.responses import DynamoHandler

    one_at_a_time = threading.Lock()
    handle = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with one_at_a_time:
            return handle(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
