"""terraform/ declares exactly the resources of meterflow/stack.py (and the Chalice app's routes).

Each comparison extracts the same facts from both sides (Terraform through tests/static/tfmodel.py,
the stack through ``stack_spec()``, the lake's tables through
``meterflow.domain.lake.catalog.LAKE_TABLES`` and the on-premises bridge's topics through
``onprem_worker.contracts``) and the tests assert they are equal, for the default variables and for
a deployment with another stack name, account, region and tuning. The mutation
tests at the end change a copy of the Terraform and check that each comparison then fails, so a
green run means agreement, not blindness.

Values Terraform only knows after apply (a queue URL, a state machine or topic ARN) are compared by
the resource they come from: both sides turn them into "<resource type> <name>".
"""

from __future__ import annotations

import ast
import base64
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest

from meterflow.bridge_wiring import BridgeSettings
from meterflow.domain.bridge import site_message_from_rule
from meterflow.domain.lake.catalog import LAKE_TABLES, LakeTable
from meterflow.lake_settings import LakeSettings
from meterflow.settings import Settings
from meterflow.stack import (
    STATE_MACHINE_DIR,
    BridgeTuning,
    ExportTuning,
    LakeTuning,
    StackSpec,
    stack_spec,
    template_variables,
)
from onprem_worker.contracts import CLOUD_TO_SITE, SITE_TO_CLOUD, TOPIC_ROOT, Channel
from tests.static.support import REPO_ROOT, ModelFactory
from tests.static.tfmodel import (
    EvaluationError,
    ModuleInstance,
    ResourceInstance,
    TemplateFile,
    TerraformModel,
    Unknown,
)

# The seed-000 API (design.md section 3) and the lake's query route; chalice_app/app.py must serve
# exactly these.
SEED_000_ROUTES = frozenset({"GET /readings", "GET /readings/file", "POST /readings/file"})
LAKE_ROUTES = frozenset({"GET /lake/queries/{name}"})
BRIDGE_ROUTES = frozenset({"POST /backfills", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel"})
EXPECTED_ROUTES = SEED_000_ROUTES | LAKE_ROUTES | BRIDGE_ROUTES
SEED_OUTPUTS = frozenset(
    {"apiGatewayInvokeURL", "SecretARN", "SecretName", "SftpServerAddress", "SftpUserName"}
)
LAKE_OUTPUTS = frozenset(
    {
        "InboundBucket",
        "IntegratedBucket",
        "GlueDatabase",
        "AthenaWorkgroup",
        "AlertsTopicArn",
        "LakeIngestStateMachineArn",
        "InputAdapterStateMachineArn",
    }
)
BRIDGE_OUTPUTS = frozenset(
    {"BackfillStateMachineArn", "IotDataEndpoint", "OnpremWorkerPolicyName", "OnpremWorkerThingType"}
)
CHALICE_APP = REPO_ROOT / "chalice_app" / "app.py"
# Variables chalice_app/app.py reads at import time for its @app.on_sqs_message decorators.
APP_QUEUE_NAME_VARIABLES = {
    "MF_FILE_REQUESTS_QUEUE_NAME": "file_requests",
    "MF_EXPORT_JOBS_QUEUE_NAME": "export_jobs",
    "MF_LAKE_JOBS_QUEUE_NAME": "lake_jobs",
    "MF_UNCOMPRESSED_OBJECTS_QUEUE_NAME": "uncompressed_objects",
    "MF_LATE_READS_QUEUE_NAME": "late_reads",
    "MF_SITE_DISPATCH_QUEUE_NAME": "site_dispatch",
    "MF_SITE_MESSAGES_QUEUE_NAME": "site_messages",
}
HANDLERS = {
    "api": "app.app",
    "start_file_export": "app.start_file_export",
    "export_worker": "app.run_export_job",
    "lake_worker": "app.run_lake_job",
    "start_file_ingest": "app.start_file_ingest",
    "merge_late_reads": "app.merge_late_reads",
    "input_adapter_scheduler": "app.schedule_input_adapters",
    "site_dispatcher": "app.dispatch_site_jobs",
    "site_messages": "app.handle_site_messages",
}
# SQS-triggered functions and the queue each consumes.
SQS_TRIGGERS = {
    "start_file_export": "file_requests",
    "export_worker": "export_jobs",
    "lake_worker": "lake_jobs",
    "start_file_ingest": "uncompressed_objects",
    "merge_late_reads": "late_reads",
    "site_dispatcher": "site_dispatch",
    "site_messages": "site_messages",
}
# LakeTuning fields are the Terraform variables of the same names, except this one: the export
# workflow's finalize_timeout_seconds already has that name.
LAKE_VARIABLE_NAMES = {"finalize_timeout_seconds": "lake_finalize_timeout_seconds"}
# The Chalice app is the root of the deployment zip: "chalice_app.app:f" runs as Lambda handler "app.f".
CHALICE_PACKAGE = "chalice_app."
MODULE_OUTPUT = re.compile(r'^module\.(?P<module>\w+)\.(?P<output>\w+)(\["(?P<key>[\w-]+)"\])?$')
FOR_EXPRESSION_OVER = re.compile(r"^for-expression over (?P<type>\w+)\.(?P<name>[\w-]+)$")
NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
DATA_SOURCE = re.compile(r"^data\.(?P<type>\w+)\.(?P<name>[\w-]+)\.(?P<attr>\w+)$")
# Data sources whose result is known only at plan time, compared by what they are asked for.
DATA_SOURCE_IDENTITY = {"aws_iot_endpoint": "endpoint_type"}
# The functions publish to sites through IoT Core's data plane on the ATS endpoint.
IOT_DATA_ENDPOINT = "<data.aws_iot_endpoint iot:Data-ATS>"
# BridgeSettings fields of MF_SITE_PUBLISH=mqtt only (a broker, with the bridge's own certificate):
# unused in AWS, where the cloud publishes through IoT Core (iot-data), so Terraform leaves them out.
MQTT_ONLY_FIELD_PREFIX = "mqtt_"
# What the IoT topic rules put on the site-messages queue (meterflow/domain/bridge.py
# site_message_from_rule): the MQTT payload base64-encoded, and its topic.
SITE_RULE_SQL = "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM '{topic_filter}'"
THING_TYPE = "<aws_iot_thing_type>"


@dataclass(frozen=True)
class Deployment:
    name: str
    stack_name: str
    account_id: str
    region: str
    tuning: ExportTuning
    lake: LakeTuning
    bridge: BridgeTuning
    use_defaults: bool  # True: pass no Terraform variables at all


DEPLOYMENTS = (
    Deployment(
        "defaults",
        "meterflow",
        "123456789012",
        "us-east-1",
        ExportTuning(),
        LakeTuning(),
        BridgeTuning(),
        use_defaults=True,
    ),
    Deployment(
        "custom",
        "acme-hes",
        "210987654321",
        "eu-west-1",
        ExportTuning(
            export_max_concurrency=4,
            plan_timeout_seconds=60,
            chunk_timeout_seconds=300,
            chunk_heartbeat_seconds=30,
            finalize_timeout_seconds=900,
            finalize_heartbeat_seconds=120,
        ),
        LakeTuning(
            range_max_concurrency=4,
            compact_max_concurrency=2,
            split_timeout_seconds=60,
            stage_timeout_seconds=600,
            stage_heartbeat_seconds=30,
            compact_timeout_seconds=700,
            compact_heartbeat_seconds=45,
            finalize_timeout_seconds=240,
            hes_job_timeout_seconds=90,
            transfer_timeout_seconds=800,
            transfer_heartbeat_seconds=40,
            hes_poll_interval_seconds=20,
            hes_poll_max_attempts=45,
            ingest_poll_interval_seconds=15,
            ingest_poll_max_attempts=120,
            scheduler_rate_minutes=1,
        ),
        BridgeTuning(
            site_timeout_seconds=1_800,
            site_heartbeat_seconds=30,
            site_retry_interval_seconds=10,
            site_max_attempts=3,
        ),
        use_defaults=False,
    ),
)


def lake_variables(lake: LakeTuning) -> dict[str, Any]:
    return {LAKE_VARIABLE_NAMES.get(name, name): value for name, value in asdict(lake).items()}


def model_for(model_factory: ModelFactory, terraform_dir: Path, deployment: Deployment) -> TerraformModel:
    # ExportTuning's, LakeTuning's and BridgeTuning's fields are the Terraform variables of the same
    # names (meterflow/stack.py), but for LAKE_VARIABLE_NAMES.
    variables = (
        {}
        if deployment.use_defaults
        else {
            "stack_name": deployment.stack_name,
            "region": deployment.region,
            **asdict(deployment.tuning),
            **lake_variables(deployment.lake),
            **asdict(deployment.bridge),
        }
    )
    return model_factory(terraform_dir, variables, account_id=deployment.account_id, region=deployment.region)


def spec_for(deployment: Deployment) -> StackSpec:
    return stack_spec(
        deployment.stack_name,
        deployment.region,
        deployment.account_id,
        deployment.tuning,
        lake=deployment.lake,
        bridge=deployment.bridge,
    )


# Module scope: a model is only read once built, and building one per test would dominate the run.
@pytest.fixture(scope="module", params=DEPLOYMENTS, ids=lambda deployment: deployment.name)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec(deployment: Deployment) -> StackSpec:
    return spec_for(deployment)


@pytest.fixture(scope="module")
def model(model_factory: ModelFactory, terraform_dir: Path, deployment: Deployment) -> TerraformModel:
    return model_for(model_factory, terraform_dir, deployment)


# ---------------------------------------------------------------------------------------------
# Facts, extracted the same way from both sides
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFacts:
    name: str
    visibility_timeout_seconds: int
    max_receive_count: int
    dlq_name: str
    dlq_message_retention_seconds: int


@dataclass(frozen=True)
class TableFacts:
    name: str
    hash_key: str
    range_key: str | None
    ttl_attribute: str | None


@dataclass(frozen=True)
class StateMachineFacts:
    name: str
    definition_file: str  # relative to the repository root
    template_vars: tuple[tuple[str, Any], ...]


def _work_queues(model: TerraformModel) -> list[ResourceInstance]:
    return [queue for queue in model.resources("aws_sqs_queue") if queue.has("redrive_policy")]


def _dead_letter_queue(queue: ResourceInstance) -> ResourceInstance:
    target = queue.attr("redrive_policy")["deadLetterTargetArn"]
    assert isinstance(target, Unknown), f"{queue.address}: deadLetterTargetArn is not a queue reference"
    dlq, attribute = queue.module.referenced_resource(target)
    assert (dlq.type, attribute) == ("aws_sqs_queue", "arn"), f"{queue.address}: DLQ target {target}"
    return dlq


def terraform_queues(model: TerraformModel) -> dict[str, QueueFacts]:
    facts = {}
    for queue in _work_queues(model):
        dlq = _dead_letter_queue(queue)
        redrive = queue.attr("redrive_policy")
        facts[queue.attr("name")] = QueueFacts(
            name=queue.attr("name"),
            visibility_timeout_seconds=queue.attr("visibility_timeout_seconds"),
            max_receive_count=redrive["maxReceiveCount"],
            dlq_name=dlq.attr("name"),
            dlq_message_retention_seconds=dlq.attr("message_retention_seconds"),
        )
    return facts


def spec_queues(spec: StackSpec) -> dict[str, QueueFacts]:
    return {
        queue.name: QueueFacts(
            queue.name,
            queue.visibility_timeout_seconds,
            queue.max_receive_count,
            queue.dlq_name,
            queue.message_retention_seconds,
        )
        for queue in spec.queues
    }


def terraform_tables(model: TerraformModel) -> dict[str, TableFacts]:
    facts = {}
    for table in model.resources("aws_dynamodb_table"):
        body = table.evaluated()
        attribute_types = {attribute["name"]: attribute["type"] for attribute in body.get("attribute", [])}
        keys = [key for key in (body["hash_key"], body.get("range_key")) if key is not None]
        assert all(attribute_types.get(key) == "S" for key in keys), f"{table.address}: keys are not strings"
        ttl = [item["attribute_name"] for item in body.get("ttl", []) if item.get("enabled")]
        facts[body["name"]] = TableFacts(
            body["name"], body["hash_key"], body.get("range_key"), ttl[0] if ttl else None
        )
    return facts


def spec_tables(spec: StackSpec) -> dict[str, TableFacts]:
    return {
        table.name: TableFacts(table.name, table.hash_key, table.range_key, table.ttl_attribute)
        for table in spec.tables
    }


def terraform_buckets(model: TerraformModel) -> set[str]:
    return {bucket.attr("bucket") for bucket in model.resources("aws_s3_bucket")}


def spec_buckets(spec: StackSpec) -> set[str]:
    return {bucket.name for bucket in spec.buckets}


def terraform_secrets(model: TerraformModel) -> dict[str, str]:
    return {
        secret.attr("name"): secret.attr("description")
        for secret in model.resources("aws_secretsmanager_secret")
    }


def spec_secrets(spec: StackSpec) -> dict[str, str]:
    return {secret.name: secret.description for secret in spec.secrets}


# -- values known only after apply: compared by the resource they come from --------------------

_NAME_ATTRIBUTES = {"aws_s3_bucket": "bucket", "aws_lambda_function": "function_name"}


def _resource_name(instance: ResourceInstance) -> str:
    return str(instance.attr(_NAME_ATTRIBUTES.get(instance.type, "name")))


def resolve_resource(model: TerraformModel, value: Any) -> ResourceInstance | None:
    """The resource a root-module reference such as ``module.queues.queue_urls["lake_jobs"]`` names."""
    if not isinstance(value, Unknown):
        return None
    match = MODULE_OUTPUT.match(value.ref)
    if not match:
        return None
    module = model.root.child(match.group("module"))
    raw = module.output(match.group("output"))
    key = match.group("key")
    if key is not None:
        if isinstance(raw, dict):
            raw = raw.get(key)
        elif isinstance(raw, Unknown) and (over := FOR_EXPRESSION_OVER.match(raw.ref)):
            # {for key, item in aws_x.this : key => item.attr}: the instance with that key
            return _instance(module, over.group("type"), over.group("name"), key)
        else:
            return None
    if not isinstance(raw, Unknown):
        return None
    try:
        instance, _ = module.referenced_resource(raw)
    except EvaluationError:
        return None
    return instance


def _instance(module: ModuleInstance, type_name: str, name: str, key: str) -> ResourceInstance | None:
    for instance in module.resources():
        if (instance.type, instance.name, instance.key) == (type_name, name, key):
            return instance
    return None


def resolve_data_source(model: TerraformModel, value: Any) -> ResourceInstance | None:
    """The data source a root-module reference such as ``module.iot.data_endpoint`` reads."""
    if not isinstance(value, Unknown) or not (match := MODULE_OUTPUT.match(value.ref)):
        return None
    if match.group("key") is not None:
        return None
    module = model.root.child(match.group("module"))
    raw = module.output(match.group("output"))
    if not isinstance(raw, Unknown) or not (data := DATA_SOURCE.match(raw.ref)):
        return None
    for instance in module.data_sources():
        if (instance.type, instance.name) == (f"data.{data.group('type')}", data.group("name")):
            return instance
    return None


def _placeholder(model: TerraformModel, value: Any) -> Any:
    """Values known only after apply, as "<resource type> <name>" of the resource they come from
    (data sources: "<data.type what it is asked for>")."""
    if not isinstance(value, Unknown):
        return value
    instance = resolve_resource(model, value)
    if instance is not None:
        return f"<{instance.type} {_resource_name(instance)}>"
    data = resolve_data_source(model, value)
    if data is not None and (identity := DATA_SOURCE_IDENTITY.get(data.type.removeprefix("data."))):
        return f"<{data.type} {data.attr(identity)}>"
    return f"<unknown {value.ref}>"


def _spec_placeholder(spec: StackSpec, value: Any) -> Any:
    for queue in spec.queues:
        if value in (spec.queue_url(queue.key), spec.queue_arn(queue.key)):
            return f"<aws_sqs_queue {queue.name}>"
    for machine in spec.state_machines:
        if value == spec.state_machine_arn(machine.key):
            return f"<aws_sfn_state_machine {machine.name}>"
    for topic in spec.topics:
        if value == spec.topic_arn(topic.key):
            return f"<aws_sns_topic {topic.name}>"
    return value


def _resource_named(model: TerraformModel, value: Any, type_name: str) -> str:
    """The name of the resource of ``type_name`` a reference points at (fails otherwise)."""
    instance = resolve_resource(model, value)
    assert instance is not None and instance.type == type_name, f"{value} is not a {type_name} reference"
    return _resource_name(instance)


# -- state machines, Lambda environment, routes -------------------------------------------------


def terraform_state_machines(model: TerraformModel) -> dict[str, StateMachineFacts]:
    facts = {}
    for machine in model.resources("aws_sfn_state_machine"):
        definition = machine.attr("definition")
        assert isinstance(definition, TemplateFile), f"{machine.address}: definition is not a templatefile()"
        path = Path(definition.path).resolve().relative_to(model.root_directory.parent)
        template_vars = tuple(
            sorted((key, _placeholder(model, value)) for key, value in definition.variables.items())
        )
        facts[machine.attr("name")] = StateMachineFacts(machine.attr("name"), str(path), template_vars)
    return facts


def spec_state_machines(spec: StackSpec) -> dict[str, StateMachineFacts]:
    return {
        machine.name: StateMachineFacts(
            machine.name,
            str((STATE_MACHINE_DIR / machine.definition_file).relative_to(REPO_ROOT)),
            tuple(
                sorted((key, _spec_placeholder(spec, value)) for key, value in machine.template_vars.items())
            ),
        )
        for machine in spec.state_machines
    }


def _env_value(value: Any) -> Any:
    """Numbers compare by value: Terraform prints 15, Settings.to_env() prints str(15.0)."""
    return float(value) if isinstance(value, str) and NUMBER_TEXT.fullmatch(value) else value


def terraform_lambda_environment(model: TerraformModel) -> dict[str, Any]:
    environments = []
    for function in model.resources("aws_lambda_function"):
        (environment,) = function.blocks("environment")
        environments.append(
            {key: _env_value(_placeholder(model, value)) for key, value in environment["variables"].items()}
        )
    assert environments, "no Lambda functions"
    assert all(environment == environments[0] for environment in environments), (
        "functions differ in environment"
    )
    return environments[0]


def lake_environment(spec: StackSpec) -> dict[str, str]:
    """The lake's resources, as meterflow/lake_settings.py reads them (and the query engine)."""
    return {
        "MF_INBOUND_BUCKET": spec.bucket("inbound").name,
        "MF_INTEGRATED_BUCKET": spec.bucket("integrated").name,
        "MF_LAKE_JOBS_QUEUE_URL": spec.queue_url("lake_jobs"),
        "MF_INTEGRATIONS_TABLE": spec.table("integrations").name,
        "MF_LAKE_FILES_TABLE": spec.table("lake_files").name,
        "MF_LAKE_INGEST_STATE_MACHINE_ARN": spec.state_machine_arn("lake_ingest"),
        "MF_INPUT_ADAPTER_STATE_MACHINE_ARN": spec.state_machine_arn("input_adapter"),
        "MF_ALERTS_TOPIC_ARN": spec.topic_arn("alerts"),
        "MF_GLUE_DATABASE": spec.glue_database,
        "MF_ATHENA_WORKGROUP": spec.athena_workgroup,
        "MF_QUERY_ENGINE": "athena",
    }


def mqtt_only_variables(settings: BridgeSettings) -> set[str]:
    """The variables of to_env() that carry the MQTT transport's fields (whatever they are named)."""
    changed: dict[str, Any] = {
        item.name: (getattr(settings, item.name) + 1 if item.type in (int, "int") else "probe")
        for item in fields(BridgeSettings)
        if item.name.startswith(MQTT_ONLY_FIELD_PREFIX)
    }
    probe = replace(settings, **changed).to_env()
    found = {key for key, value in settings.to_env().items() if probe[key] != value}
    assert found, "BridgeSettings has no MQTT fields any more: revisit MQTT_ONLY_FIELD_PREFIX"
    return found


def spec_lambda_environment(spec: StackSpec) -> dict[str, Any]:
    resources = {
        "MF_STACK_NAME": spec.stack_name,
        "AWS_REGION": spec.region,
        "MF_FILE_REQUESTS_TABLE": spec.table("file_requests").name,
        "MF_FILE_REQUESTS_QUEUE_URL": spec.queue_url("file_requests"),
        "MF_EXPORT_JOBS_QUEUE_URL": spec.queue_url("export_jobs"),
        "MF_EXPORTS_BUCKET": spec.bucket("hes_exports").name,
        "MF_EXPORT_STATE_MACHINE_ARN": spec.state_machine_arn("hes_export"),
        **lake_environment(spec),
    }
    bridge = {
        **resources,
        "MF_BRIDGE_JOBS_TABLE": spec.table("bridge_jobs").name,
        "MF_BACKFILL_STATE_MACHINE_ARN": spec.state_machine_arn("historian_backfill"),
        "MF_SITE_PUBLISH": "iot-data",
        "MF_IOT_DATA_ENDPOINT": IOT_DATA_ENDPOINT,
    }
    bridge_env = BridgeSettings.from_env(bridge).to_env()
    mqtt_only = mqtt_only_variables(BridgeSettings.from_env(bridge))
    bridge_settings = {key: value for key, value in bridge_env.items() if key not in mqtt_only}
    # The settings classes with their defaults, as every function reads them. AWS_REGION is
    # reserved in Lambda: the runtime sets it, a function may not.
    settings = {
        **LakeSettings.from_env(resources).to_env(),
        **Settings.from_env(resources).to_env(),
        **bridge_settings,
    }
    environment = {
        key: _env_value(_spec_placeholder(spec, value))
        for key, value in settings.items()
        if key != "AWS_REGION"
    }
    environment.update({variable: spec.queue(key).name for variable, key in APP_QUEUE_NAME_VARIABLES.items()})
    # chalice_app/app.py's @app.schedule rate, read at import time like the queue names.
    (scheduler,) = spec.schedules
    environment["MF_SCHEDULER_RATE_MINUTES"] = _env_value(str(scheduler.rate_minutes))
    return environment


def terraform_routes(model: TerraformModel) -> set[str]:
    routes: set[str] = set()
    resource_paths = {f"/{resource.key}" for resource in model.resources("aws_api_gateway_resource")}
    for method in model.resources("aws_api_gateway_method"):
        route = str(method.key)
        http_method, path = route.split(" ", 1)
        assert method.attr("http_method") == http_method, method.address
        assert path in resource_paths, f"{method.address}: no API resource {path}"
        routes.add(route)
    return routes


def spec_routes(spec: StackSpec) -> set[str]:
    del spec  # the routes are the seed-000 contract, the lake's and the bridge's, not part of the spec
    return set(EXPECTED_ROUTES)


# -- topics, notifications, event rules, schedules ----------------------------------------------


@dataclass(frozen=True)
class NotificationFacts:
    bucket: str
    prefix: str
    queue: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class EventRuleFacts:
    name: str
    event_bus: str
    pattern: str  # JSON with sorted keys
    target_queues: tuple[str, ...]


@dataclass(frozen=True)
class ScheduleFacts:
    name: str
    schedule_expression: str
    target_handlers: tuple[str, ...]


def terraform_topics(model: TerraformModel) -> set[str]:
    return {topic.attr("name") for topic in model.resources("aws_sns_topic")}


def spec_topics(spec: StackSpec) -> set[str]:
    return {topic.name for topic in spec.topics}


def terraform_notifications(model: TerraformModel) -> set[NotificationFacts]:
    facts = set()
    for notification in model.resources("aws_s3_bucket_notification"):
        bucket, _ = notification.module.referenced_resource(notification.attr("bucket"))
        for queue in notification.blocks("queue"):
            facts.add(
                NotificationFacts(
                    bucket.attr("bucket"),
                    queue.get("filter_prefix", ""),
                    _resource_named(model, queue["queue_arn"], "aws_sqs_queue"),
                    tuple(sorted(queue["events"])),
                )
            )
        assert not notification.blocks("topic") and not notification.blocks("lambda_function"), (
            f"{notification.address}: only queue notifications are in the stack spec"
        )
    return facts


def spec_notifications(spec: StackSpec) -> set[NotificationFacts]:
    return {
        NotificationFacts(
            spec.bucket(notification.bucket_key).name,
            notification.prefix,
            spec.queue(notification.queue_key).name,
            ("s3:ObjectCreated:*",),
        )
        for notification in spec.notifications
    }


def _targets(rule: ResourceInstance) -> list[ResourceInstance]:
    return [
        target
        for target in rule.module.resources()
        if target.type == "aws_cloudwatch_event_target"
        and rule.module.referenced_resource(target.attr("rule"))[0].address == rule.address
    ]


def _event_bus(rule: ResourceInstance) -> str:
    return str(rule.attr("event_bus_name")) if rule.has("event_bus_name") else "default"


def terraform_event_rules(model: TerraformModel) -> dict[str, EventRuleFacts]:
    facts = {}
    for rule in model.resources("aws_cloudwatch_event_rule"):
        if not rule.has("event_pattern"):
            continue
        facts[rule.attr("name")] = EventRuleFacts(
            rule.attr("name"),
            _event_bus(rule),
            json.dumps(rule.attr("event_pattern"), sort_keys=True),
            tuple(
                sorted(
                    _resource_named(model, target.attr("arn"), "aws_sqs_queue") for target in _targets(rule)
                )
            ),
        )
    return facts


def spec_event_rules(spec: StackSpec) -> dict[str, EventRuleFacts]:
    return {
        rule.name: EventRuleFacts(
            rule.name,
            "default",
            json.dumps(rule.event_pattern, sort_keys=True),
            (spec.queue(rule.queue_key).name,),
        )
        for rule in spec.event_rules
    }


def lambda_handler(handler: str) -> str:
    """A Chalice handler as Lambda runs it: chalice_app.app:f -> app.f (the app is the zip's root)."""
    module, function = handler.split(":")
    return f"{module.removeprefix(CHALICE_PACKAGE)}.{function}"


def terraform_schedules(model: TerraformModel) -> dict[str, ScheduleFacts]:
    facts = {}
    for rule in model.resources("aws_cloudwatch_event_rule"):
        if not rule.has("schedule_expression"):
            continue
        handlers = []
        for target in _targets(rule):
            function = resolve_resource(model, target.attr("arn"))
            assert function is not None and function.type == "aws_lambda_function", target.address
            handlers.append(function.attr("handler"))
        facts[rule.attr("name")] = ScheduleFacts(
            rule.attr("name"), rule.attr("schedule_expression"), tuple(sorted(handlers))
        )
    return facts


def spec_schedules(spec: StackSpec) -> dict[str, ScheduleFacts]:
    return {
        schedule.name: ScheduleFacts(
            schedule.name, schedule.schedule_expression, (lambda_handler(schedule.handler),)
        )
        for schedule in spec.schedules
    }


# -- the catalog: Glue database and tables, Athena workgroup -------------------------------------


@dataclass(frozen=True)
class GlueTableFacts:
    name: str
    table_type: str
    location: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    # partition projection: projection.* and storage.location.template
    projection: tuple[tuple[str, str], ...]


def _is_projection_parameter(key: str) -> bool:
    return key.startswith("projection.") or key == "storage.location.template"


def terraform_glue_databases(model: TerraformModel) -> set[str]:
    return {database.attr("name") for database in model.resources("aws_glue_catalog_database")}


def spec_glue_databases(spec: StackSpec) -> set[str]:
    return {spec.glue_database}


def terraform_glue_tables(model: TerraformModel) -> dict[str, GlueTableFacts]:
    facts = {}
    for table in model.resources("aws_glue_catalog_table"):
        body = table.evaluated()
        (storage,) = body["storage_descriptor"]
        parameters = body.get("parameters", {})
        facts[body["name"]] = GlueTableFacts(
            body["name"],
            body["table_type"],
            storage["location"],
            tuple((column["name"], column["type"]) for column in storage.get("columns", [])),
            tuple((key["name"], key["type"]) for key in body.get("partition_keys", [])),
            tuple(sorted((key, value) for key, value in parameters.items() if _is_projection_parameter(key))),
        )
    return facts


def projection_parameters(table: LakeTable, bucket: str) -> dict[str, str]:
    """Athena partition projection for catalog.py's partition columns."""
    if not table.partitions:
        return {}
    parameters = {
        "projection.enabled": "true",
        "storage.location.template": f"s3://{bucket}/{table.location_template}",
    }
    for column in table.partitions:
        prefix = f"projection.{column.name}"
        parameters[f"{prefix}.type"] = column.projection_type
        if column.projection_type == "enum":
            parameters[f"{prefix}.values"] = ",".join(column.values)
        elif column.projection_type == "integer":
            parameters[f"{prefix}.range"] = ",".join(column.range)
            if column.digits:
                parameters[f"{prefix}.digits"] = str(column.digits)
        elif column.projection_type == "date":
            parameters[f"{prefix}.range"] = ",".join(column.range)
            parameters[f"{prefix}.format"] = column.date_format
        else:
            raise AssertionError(f"{table.name}.{column.name}: unknown projection {column.projection_type}")
    return parameters


def spec_glue_tables(spec: StackSpec) -> dict[str, GlueTableFacts]:
    bucket = spec.bucket("integrated").name
    return {
        table.name: GlueTableFacts(
            table.name,
            "EXTERNAL_TABLE",
            f"s3://{bucket}/{table.prefix}/",
            tuple((column.name, column.glue_type) for column in table.columns),
            tuple((column.name, column.glue_type) for column in table.partitions),
            tuple(sorted(projection_parameters(table, bucket).items())),
        )
        for table in LAKE_TABLES
    }


def terraform_athena_workgroups(model: TerraformModel) -> set[str]:
    return {workgroup.attr("name") for workgroup in model.resources("aws_athena_workgroup")}


def spec_athena_workgroups(spec: StackSpec) -> set[str]:
    return {spec.athena_workgroup}


# -- the on-premises bridge in IoT Core: topic rules and the workers' policy ----------------------


@dataclass(frozen=True)
class SiteRuleFacts:
    sql: str
    sql_version: str
    enabled: bool
    queue: str
    use_base64: bool
    error_queue: str


def terraform_site_rules(model: TerraformModel) -> set[SiteRuleFacts]:
    facts = set()
    for rule in model.resources("aws_iot_topic_rule"):
        body = rule.evaluated()
        (sqs,) = body["sqs"]
        (error_action,) = body["error_action"]
        (error_sqs,) = error_action["sqs"]
        assert set(body) & {"lambda", "republish", "http", "kinesis", "firehose", "sns"} == set(), (
            rule.address
        )
        facts.add(
            SiteRuleFacts(
                body["sql"],
                body["sql_version"],
                body["enabled"],
                _resource_named(model, sqs["queue_url"], "aws_sqs_queue"),
                sqs["use_base64"],
                _resource_named(model, error_sqs["queue_url"], "aws_sqs_queue"),
            )
        )
    return facts


def spec_site_rules(spec: StackSpec) -> set[SiteRuleFacts]:
    """One rule per site-to-cloud channel, into the site-messages queue, failures into its DLQ."""
    queue = spec.queue("site_messages")
    return {
        SiteRuleFacts(
            SITE_RULE_SQL.format(topic_filter=f"{TOPIC_ROOT}/+/+/{channel.value}"),
            "2016-03-23",
            True,
            queue.name,
            False,
            queue.dlq_name,
        )
        for channel in SITE_TO_CLOUD
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def terraform_worker_policy(model: TerraformModel) -> dict[str, tuple[tuple[str, ...], str]]:
    """Action -> (resources, conditions as JSON) of the workers' IoT policy (Allow only)."""
    (thing_type,) = model.resources("aws_iot_thing_type")
    (policy,) = model.resources("aws_iot_policy")
    facts: dict[str, tuple[tuple[str, ...], str]] = {}
    for statement in policy.attr("policy")["Statement"]:
        assert statement["Effect"] == "Allow", statement
        (action,) = _as_list(statement["Action"])
        assert action not in facts, f"{action} granted twice"
        # The thing type condition names the thing type Terraform declares.
        conditions = json.loads(
            json.dumps(statement.get("Condition", {})).replace(
                json.dumps(thing_type.attr("name")), f'"{THING_TYPE}"'
            )
        )
        facts[action] = (
            tuple(sorted(_as_list(statement["Resource"]))),
            json.dumps(conditions, sort_keys=True),
        )
    return facts


def spec_worker_policy(spec: StackSpec) -> dict[str, tuple[tuple[str, ...], str]]:
    """A worker connects as its own registered thing and touches only its own tenant's and worker's
    topics: it takes the cloud-to-site channels and answers on the site-to-cloud ones."""
    arn = f"arn:aws:iot:{spec.region}:{spec.account_id}"
    own = f"{TOPIC_ROOT}/${{iot:Connection.Thing.Attributes[tenant]}}/${{iot:Connection.Thing.ThingName}}"
    connect = {
        "Bool": {"iot:Connection.Thing.IsAttached": "true"},
        "StringEquals": {"iot:Connection.Thing.ThingTypeName": THING_TYPE},
    }

    def resources(kind: str, channels: tuple[Channel, ...]) -> tuple[str, ...]:
        return tuple(sorted(f"{arn}:{kind}/{own}/{channel.value}" for channel in channels))

    return {
        "iot:Connect": (
            (f"{arn}:client/${{iot:Connection.Thing.ThingName}}",),
            json.dumps(connect, sort_keys=True),
        ),
        "iot:Subscribe": (resources("topicfilter", CLOUD_TO_SITE), "{}"),
        "iot:Receive": (resources("topic", CLOUD_TO_SITE), "{}"),
        "iot:Publish": (resources("topic", SITE_TO_CLOUD), "{}"),
    }


Comparison = Callable[[TerraformModel, StackSpec], tuple[Any, Any]]
COMPARISONS: dict[str, Comparison] = {
    "buckets": lambda model, spec: (terraform_buckets(model), spec_buckets(spec)),
    "queues": lambda model, spec: (terraform_queues(model), spec_queues(spec)),
    "tables": lambda model, spec: (terraform_tables(model), spec_tables(spec)),
    "secrets": lambda model, spec: (terraform_secrets(model), spec_secrets(spec)),
    "topics": lambda model, spec: (terraform_topics(model), spec_topics(spec)),
    "notifications": lambda model, spec: (terraform_notifications(model), spec_notifications(spec)),
    "event_rules": lambda model, spec: (terraform_event_rules(model), spec_event_rules(spec)),
    "schedules": lambda model, spec: (terraform_schedules(model), spec_schedules(spec)),
    "state_machines": lambda model, spec: (terraform_state_machines(model), spec_state_machines(spec)),
    "glue_database": lambda model, spec: (terraform_glue_databases(model), spec_glue_databases(spec)),
    "glue_tables": lambda model, spec: (terraform_glue_tables(model), spec_glue_tables(spec)),
    "athena_workgroup": lambda model, spec: (
        terraform_athena_workgroups(model),
        spec_athena_workgroups(spec),
    ),
    "lambda_environment": lambda model, spec: (
        terraform_lambda_environment(model),
        spec_lambda_environment(spec),
    ),
    "routes": lambda model, spec: (terraform_routes(model), spec_routes(spec)),
    "site_rules": lambda model, spec: (terraform_site_rules(model), spec_site_rules(spec)),
    "worker_policy": lambda model, spec: (terraform_worker_policy(model), spec_worker_policy(spec)),
}


# ---------------------------------------------------------------------------------------------
# Terraform agrees with meterflow/stack.py
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", sorted(COMPARISONS))
def test_terraform_agrees_with_stack_spec(model: TerraformModel, spec: StackSpec, aspect: str) -> None:
    # GIVEN the Terraform (with this deployment's variables) and stack_spec() for the same deployment
    # WHEN extracting the same facts from both
    terraform_side, spec_side = COMPARISONS[aspect](model, spec)
    # THEN they are equal
    assert terraform_side == spec_side


def test_every_queue_is_a_work_queue_or_its_dlq(model: TerraformModel, spec: StackSpec) -> None:
    # GIVEN every SQS queue Terraform declares
    all_names = [queue.attr("name") for queue in model.resources("aws_sqs_queue")]
    # WHEN pairing each work queue with the DLQ of its redrive policy
    dlq_names = [_dead_letter_queue(queue).attr("name") for queue in _work_queues(model)]
    work_names = [queue.attr("name") for queue in _work_queues(model)]
    # THEN there is no queue without a DLQ and no queue that is neither
    assert sorted(all_names) == sorted(work_names + dlq_names)
    assert len(set(dlq_names)) == len(dlq_names) == len(spec.queues)


def test_every_dlq_only_accepts_its_own_queue(model: TerraformModel) -> None:
    # GIVEN every work queue and its DLQ
    for queue in _work_queues(model):
        dlq = _dead_letter_queue(queue)
        # WHEN finding the redrive-allow policy on the DLQ
        policies = [
            policy.attr("redrive_allow_policy")
            for policy in dlq.module.resources()
            if policy.type == "aws_sqs_queue_redrive_allow_policy"
            and dlq.module.referenced_resource(policy.attr("queue_url"))[0].address == dlq.address
        ]
        # THEN it allows exactly the work queue as a source
        assert len(policies) == 1, dlq.address
        assert policies[0]["redrivePermission"] == "byQueue"
        sources = [dlq.module.referenced_resource(arn)[0].address for arn in policies[0]["sourceQueueArns"]]
        assert sources == [queue.address]


def test_template_variables_are_the_placeholders_of_the_definition(
    model: TerraformModel, spec: StackSpec
) -> None:
    for machine in spec.state_machines:
        # GIVEN a state machine of the spec and its Terraform counterpart
        facts = terraform_state_machines(model)[machine.name]
        # WHEN comparing the variables Terraform passes with the placeholders of the ASL file
        passed = {key for key, _ in facts.template_vars}
        # THEN Terraform, stack.py and the file agree on the exact set
        assert passed == template_variables(machine.definition_file) == set(machine.template_vars)


def test_export_jobs_visibility_outlasts_the_worker(model: TerraformModel, deployment: Deployment) -> None:
    # GIVEN the export-jobs queue and the export worker
    queues = {queue.key: queue for queue in _work_queues(model)}
    functions = {function.key: function for function in model.resources("aws_lambda_function")}
    # WHEN comparing the queue's visibility timeout with the worker's timeout
    visibility = queues["export_jobs"].attr("visibility_timeout_seconds")
    timeout = functions["export_worker"].attr("timeout")
    # THEN a message stays invisible while a worker may still run (stack.py: chunk timeout + 60 s)
    assert timeout == deployment.tuning.chunk_timeout_seconds
    assert visibility == timeout + 60


def test_lake_jobs_visibility_outlasts_the_lake_worker(model: TerraformModel, deployment: Deployment) -> None:
    # GIVEN the lake-jobs queue and the lake worker
    queues = {queue.key: queue for queue in _work_queues(model)}
    functions = {function.key: function for function in model.resources("aws_lambda_function")}
    # WHEN comparing the queue's visibility timeout with the worker's timeout
    visibility = queues["lake_jobs"].attr("visibility_timeout_seconds")
    timeout = functions["lake_worker"].attr("timeout")
    # THEN the worker may run for the longest lake job, and a message stays invisible meanwhile
    lake = deployment.lake
    assert timeout == max(
        lake.stage_timeout_seconds, lake.compact_timeout_seconds, lake.transfer_timeout_seconds
    )
    assert visibility == timeout + 60 == lake.lake_jobs_visibility_seconds


def test_sqs_triggered_functions_finish_within_the_visibility_timeout(model: TerraformModel) -> None:
    # GIVEN each SQS event source mapping, its function and its queue
    queues = {queue.key: queue for queue in _work_queues(model)}
    functions = {function.key: function for function in model.resources("aws_lambda_function")}
    for mapping in model.resources("aws_lambda_event_source_mapping"):
        queue = resolve_resource(model, mapping.attr("event_source_arn"))
        assert queue is not None and queue.address == queues[SQS_TRIGGERS[str(mapping.key)]].address
        # WHEN comparing the function's timeout with the queue's visibility timeout
        timeout = functions[str(mapping.key)].attr("timeout")
        # THEN a message is not handed to a second invocation while the first may still run (AWS
        # also refuses to create a mapping otherwise)
        assert timeout <= queue.attr("visibility_timeout_seconds"), mapping.address


def test_functions_run_the_chalice_handlers(default_model: TerraformModel) -> None:
    # GIVEN the Lambda functions
    functions = {function.key: function for function in default_model.resources("aws_lambda_function")}
    # WHEN reading their handlers, runtime and tracing
    handlers = {key: function.attr("handler") for key, function in functions.items()}
    # THEN they are the Chalice entry points, on python3.11 with active tracing
    assert handlers == HANDLERS
    for function in functions.values():
        assert function.attr("runtime") == "python3.11"
        assert function.blocks("tracing_config") == [{"mode": "Active"}]


def test_sqs_triggers_report_batch_item_failures(default_model: TerraformModel) -> None:
    # GIVEN the event source mappings
    mappings = default_model.resources("aws_lambda_event_source_mapping")
    # WHEN reading their settings
    settings = {
        mapping.key: (mapping.attr("batch_size"), mapping.attr("function_response_types"))
        for mapping in mappings
    }
    # THEN each SQS-triggered function takes one message at a time and reports failures per item
    expected = (1, ["ReportBatchItemFailures"])
    assert settings == dict.fromkeys(SQS_TRIGGERS, expected)


def test_api_methods_require_iam_and_proxy_to_lambda(default_model: TerraformModel) -> None:
    # GIVEN the API's methods and integrations
    methods = default_model.resources("aws_api_gateway_method")
    integrations = default_model.resources("aws_api_gateway_integration")
    # WHEN reading their authorization and integration type
    authorizations = {method.attr("authorization") for method in methods}
    integration_types = {integration.attr("type") for integration in integrations}
    # THEN every route is SigV4-authenticated and proxied to the API function
    assert authorizations == {"AWS_IAM"}
    assert integration_types == {"AWS_PROXY"}
    assert len(integrations) == len(methods) == len(EXPECTED_ROUTES)


def test_root_outputs_include_the_seed_000_names(default_model: TerraformModel) -> None:
    # GIVEN the root module's outputs
    outputs = set(default_model.root.source.outputs)
    # WHEN looking for the names the HES simulator guide documents
    missing = SEED_OUTPUTS - outputs
    # THEN all are there, spelled exactly
    assert missing == set()


def test_root_outputs_name_the_lake(default_model: TerraformModel) -> None:
    # GIVEN the root module's outputs
    outputs = set(default_model.root.source.outputs)
    # WHEN looking for the lake's buckets, catalog, workgroup, topic and workflows
    missing = LAKE_OUTPUTS - outputs
    # THEN all are there
    assert missing == set()


def test_root_outputs_name_the_bridge(default_model: TerraformModel) -> None:
    # GIVEN the root module's outputs
    outputs = set(default_model.root.source.outputs)
    # WHEN looking for what provisioning a site needs (endpoint, thing type, policy) and the workflow
    missing = BRIDGE_OUTPUTS - outputs
    # THEN all are there
    assert missing == set()


def test_site_dispatch_visibility_outlasts_the_dispatcher(
    model: TerraformModel, deployment: Deployment
) -> None:
    # GIVEN the site-dispatch queue and its consumer
    queues = {queue.key: queue for queue in _work_queues(model)}
    functions = {function.key: function for function in model.resources("aws_lambda_function")}
    # WHEN comparing the queue's visibility timeout with BridgeTuning and the dispatcher's timeout
    visibility = queues["site_dispatch"].attr("visibility_timeout_seconds")
    # THEN publishing (not the site's work, which the Task waits for) is what the queue outlasts
    assert visibility == deployment.bridge.site_dispatch_visibility_seconds
    assert functions["site_dispatcher"].attr("timeout") < visibility


# ---------------------------------------------------------------------------------------------
# Who may send, invoke and read: the service grants the comparisons above rely on
# ---------------------------------------------------------------------------------------------


def _policy_statements(module: ModuleInstance, data_name: str, key: str | None) -> list[dict[str, Any]]:
    (document,) = [
        data
        for data in module.data_sources()
        if data.type == "data.aws_iam_policy_document" and data.name == data_name and data.key == key
    ]
    return list(document.blocks("statement"))


def _conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    return {item["variable"]: (item["test"], item["values"]) for item in statement.get("condition", [])}


def _service_senders(queue: ResourceInstance) -> dict[str, list[Any]]:
    """Service principal -> aws:SourceArn values of the Allow statements of a work queue's policy."""
    senders: dict[str, list[Any]] = {}
    for statement in _policy_statements(queue.module, "tls_only", str(queue.key)):
        if statement.get("effect", "Allow") != "Allow":
            continue
        assert statement["actions"] == ["sqs:SendMessage"], statement
        conditions = _conditions(statement)
        assert conditions["aws:SourceAccount"][1] == [queue.module.variables["account_id"]], statement
        for principal in statement["principals"]:
            assert principal["type"] == "Service", statement
            for service in principal["identifiers"]:
                senders.setdefault(service, []).extend(conditions["aws:SourceArn"][1])
    return senders


def _queue_named(model: TerraformModel, name: str) -> ResourceInstance:
    (queue,) = [queue for queue in _work_queues(model) if queue.attr("name") == name]
    return queue


def _key_policy_grants(model: TerraformModel) -> dict[str, list[Any]]:
    """Service principal -> queue ARNs the KMS key policy lets it encrypt for (aws:sqs:arn context)."""
    grants: dict[str, list[Any]] = {}
    for statement in _policy_statements(model.root.child("kms"), "key", None):
        conditions = _conditions(statement)
        if "kms:EncryptionContext:aws:sqs:arn" not in conditions:
            continue
        assert set(statement["actions"]) == {"kms:GenerateDataKey", "kms:Decrypt"}, statement
        for principal in statement["principals"]:
            for service in principal["identifiers"]:
                grants.setdefault(service, []).extend(conditions["kms:EncryptionContext:aws:sqs:arn"][1])
    return grants


def test_notification_queues_admit_their_bucket(model: TerraformModel, spec: StackSpec) -> None:
    for notification in spec.notifications:
        # GIVEN a bucket notification of the spec, its queue and the key the queue is encrypted with
        bucket = spec.bucket(notification.bucket_key).name
        queue = _queue_named(model, spec.queue(notification.queue_key).name)
        # WHEN reading the queue's policy and the key policy
        senders = _service_senders(queue)
        grants = _key_policy_grants(model)
        # THEN S3 may send from that bucket only, and may encrypt for that queue
        assert senders.get("s3.amazonaws.com") == [f"arn:aws:s3:::{bucket}"]
        assert spec.queue_arn(notification.queue_key) in grants.get("s3.amazonaws.com", [])


def test_event_rule_queues_admit_their_rule(model: TerraformModel, spec: StackSpec) -> None:
    for rule in spec.event_rules:
        # GIVEN an event rule of the spec, its target queue and the key the queue is encrypted with
        queue = _queue_named(model, spec.queue(rule.queue_key).name)
        rule_arn = f"arn:aws:events:{spec.region}:{spec.account_id}:rule/{rule.name}"
        # WHEN reading the queue's policy and the key policy
        senders = _service_senders(queue)
        grants = _key_policy_grants(model)
        # THEN EventBridge may send from that rule only, and may encrypt for that queue
        assert senders.get("events.amazonaws.com") == [rule_arn]
        assert spec.queue_arn(rule.queue_key) in grants.get("events.amazonaws.com", [])


def test_other_queues_admit_no_service(model: TerraformModel, spec: StackSpec) -> None:
    # GIVEN the queues that no notification or rule of the spec targets
    targeted = {notification.queue_key for notification in spec.notifications}
    targeted |= {rule.queue_key for rule in spec.event_rules}
    for queue in spec.queues:
        if queue.key in targeted:
            continue
        # WHEN reading the queue's policy
        senders = _service_senders(_queue_named(model, queue.name))
        # THEN it admits no AWS service
        assert senders == {}, queue.name


def test_schedules_may_invoke_their_function(model: TerraformModel) -> None:
    for rule in model.resources("aws_cloudwatch_event_rule"):
        if not rule.has("schedule_expression"):
            continue
        # GIVEN a schedule and the function it targets
        (target,) = _targets(rule)
        function = resolve_resource(model, target.attr("arn"))
        assert function is not None
        # WHEN looking for the Lambda permission that admits the schedule
        permissions = [
            permission
            for permission in rule.module.resources()
            if permission.type == "aws_lambda_permission"
            and rule.module.referenced_resource(permission.attr("source_arn"))[0].address == rule.address
        ]
        # THEN EventBridge may invoke exactly that function, from exactly that rule
        assert len(permissions) == 1, rule.address
        (permission,) = permissions
        assert permission.attr("principal") == "events.amazonaws.com"
        assert permission.attr("action") == "lambda:InvokeFunction"
        assert _resource_named(
            model, permission.attr("function_name"), "aws_lambda_function"
        ) == _resource_name(function)


def test_api_invoke_grants_name_served_routes(default_model: TerraformModel) -> None:
    # GIVEN the routes the API serves and the SigV4 callers the stack grants routes to
    (api,) = [module for module in default_model.modules() if module.address == "module.api"]
    served = terraform_routes(default_model)
    grants = api.variables["invoke_grants"]
    # WHEN comparing them
    granted = {route for grant in grants.values() for route in grant["routes"]}
    # THEN every granted route is served, and the lake worker (the input adapter's HES client) may
    # request files and poll their status
    assert granted <= served
    lake_worker = resolve_resource(default_model, grants["lake_worker"]["role_name"])
    assert lake_worker is not None and (lake_worker.type, lake_worker.key) == ("aws_iam_role", "lake_worker")
    assert set(grants["lake_worker"]["routes"]) == {"POST /readings/file", "GET /readings/file"}


def _iam_statements(module: ModuleInstance) -> dict[str, list[dict[str, Any]]]:
    """Statements of each policy document of a module, by document name and key."""
    return {
        f"{data.name}[{data.key}]" if data.key is not None else data.name: list(data.blocks("statement"))
        for data in module.data_sources()
        if data.type == "data.aws_iam_policy_document"
    }


def test_only_the_dispatcher_and_the_cancel_route_publish_to_sites(
    model: TerraformModel, spec: StackSpec
) -> None:
    # GIVEN the functions' policy documents
    (functions,) = [module for module in model.modules() if module.address == "module.functions"]
    # WHEN collecting who may do anything in IoT Core, and what
    iot_statements = {
        name: [
            statement for statement in statements if any(a.startswith("iot:") for a in statement["actions"])
        ]
        for name, statements in _iam_statements(functions).items()
    }
    actions = {action for found in iot_statements.values() for item in found for action in item["actions"]}
    publishers = {
        name: sorted(resource for statement in found for resource in statement["resources"])
        for name, found in iot_statements.items()
        if found
    }
    topic = f"arn:aws:iot:{spec.region}:{spec.account_id}:topic/{TOPIC_ROOT}/*/*"
    # THEN they only publish: the dispatcher jobs, the API (its cancel route) cancellations
    assert actions == {"iot:Publish"}
    assert publishers == {
        "site_dispatcher": [f"{topic}/{Channel.JOBS}"],
        "api": [f"{topic}/{Channel.CANCEL}"],
    }


def test_site_rules_role_only_sends_to_the_site_messages_queues(
    model: TerraformModel, spec: StackSpec
) -> None:
    # GIVEN the role the topic rules act with
    (iot,) = [module for module in model.modules() if module.address == "module.iot"]
    statements = _iam_statements(iot)["rules"]
    # WHEN reading what it may do
    sends = [statement for statement in statements if statement["actions"] == ["sqs:SendMessage"]]
    others = [statement for statement in statements if statement not in sends]
    # THEN it may send to the site-messages queue and its DLQ, and use the stack key through SQS only
    (send,) = sends
    queue = spec.queue("site_messages")
    assert sorted(_resource_named(model, arn, "aws_sqs_queue") for arn in send["resources"]) == sorted(
        [queue.name, queue.dlq_name]
    )
    (encrypt,) = others
    assert set(encrypt["actions"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert _conditions(encrypt)["kms:ViaService"] == ("StringEquals", [f"sqs.{spec.region}.amazonaws.com"])
    # ... and only the stack's rules may assume it
    (assume,) = _iam_statements(iot)["rules_assume"]
    rule_names = sorted(rule.attr("name") for rule in model.resources("aws_iot_topic_rule"))
    assert assume["principals"] == [{"type": "Service", "identifiers": ["iot.amazonaws.com"]}]
    assert _conditions(assume)["aws:SourceArn"] == (
        "ArnLike",
        [f"arn:aws:iot:{spec.region}:{spec.account_id}:rule/{name}" for name in rule_names],
    )


def test_worker_policy_fits_iot_core_s_size_limit(model_factory: ModelFactory, terraform_dir: Path) -> None:
    # GIVEN the workers' policy for the longest stack name and a long region name
    variables = {"stack_name": "a" * 32, "region": "ap-southeast-2"}
    model = model_factory(terraform_dir, variables, region="ap-southeast-2")
    (policy,) = model.resources("aws_iot_policy")
    # WHEN measuring its document without whitespace (how IoT Core counts)
    size = len(json.dumps(policy.attr("policy"), separators=(",", ":")))
    # THEN IoT Core accepts it (2048 characters at most)
    assert size <= 2048


def test_site_rule_envelope_is_what_the_handler_reads(default_model: TerraformModel) -> None:
    for rule in default_model.resources("aws_iot_topic_rule"):
        # GIVEN a topic rule's SELECT clause
        select = re.fullmatch(r"SELECT (?P<columns>.+) FROM '(?P<topic>[^']+)'", rule.attr("sql"))
        assert select is not None, rule.attr("sql")
        columns = {}  # alias -> expression
        for column in re.split(r",\s*(?![^(]*\))", select.group("columns")):  # commas outside calls
            expression, alias = column.split(" AS ")
            columns[alias] = expression
        # WHEN building the SQS body it produces for one message (base64 of the payload, its topic)
        payload = b'{"version": 1, "job_id": "j-1"}'
        topic_name = select.group("topic").replace("+", "acme", 1).replace("+", "site-1", 1)
        produced = {"encode(*, 'base64')": base64.b64encode(payload).decode(), "topic()": topic_name}
        body = json.dumps({alias: produced[expression] for alias, expression in columns.items()})
        # THEN the site-messages handler reads the topic and the payload back
        assert site_message_from_rule(body) == (topic_name, payload)


def test_scheduler_is_not_retried(default_model: TerraformModel) -> None:
    # GIVEN the asynchronous invoke configuration of the scheduler
    (config,) = default_model.resources("aws_lambda_function_event_invoke_config")
    function, _ = config.module.referenced_resource(config.attr("function_name"))
    # WHEN reading its retries
    retries = config.attr("maximum_retry_attempts")
    # THEN a failed tick is left to the next one
    assert (function.key, retries) == ("input_adapter_scheduler", 0)


def test_glue_tables_belong_to_the_lake_database(model: TerraformModel, spec: StackSpec) -> None:
    for table in model.resources("aws_glue_catalog_table"):
        # GIVEN a Glue table
        # WHEN resolving its database
        database, attribute = table.module.referenced_resource(table.attr("database_name"))
        # THEN it is the lake's database
        assert (database.type, attribute, database.attr("name")) == (
            "aws_glue_catalog_database",
            "name",
            spec.glue_database,
        )


def test_glue_tables_are_parquet(default_model: TerraformModel) -> None:
    for table in default_model.resources("aws_glue_catalog_table"):
        # GIVEN a Glue table's storage descriptor
        (storage,) = table.blocks("storage_descriptor")
        (serde,) = storage["ser_de_info"]
        # WHEN reading its formats
        formats = (storage["input_format"], storage["output_format"], serde["serialization_library"])
        # THEN they are Hive's Parquet formats
        assert formats == (
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        ), table.address


def test_athena_workgroup_enforces_encrypted_results(model: TerraformModel, spec: StackSpec) -> None:
    # GIVEN the lake's workgroup
    (workgroup,) = model.resources("aws_athena_workgroup")
    (configuration,) = workgroup.blocks("configuration")
    (results,) = configuration["result_configuration"]
    (encryption,) = results["encryption_configuration"]
    # WHEN reading its configuration
    # THEN clients cannot override it, results land in the results bucket, KMS-encrypted, and every
    # query has a scan limit
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["publish_cloudwatch_metrics_enabled"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] >= 10 * 1024 * 1024
    assert results["output_location"].startswith(f"s3://{spec.bucket('athena_results').name}/")
    assert encryption["encryption_option"] == "SSE_KMS"


# ---------------------------------------------------------------------------------------------
# The Chalice app (read with ast: importing it would need its runtime dependencies)
# ---------------------------------------------------------------------------------------------


def _chalice_module() -> ast.Module:
    return ast.parse(CHALICE_APP.read_text())


def chalice_routes(module: ast.Module) -> set[str]:
    routes: set[str] = set()
    for node in ast.walk(module):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", None) == "route":
                path = ast.literal_eval(decorator.args[0])
                methods = next(
                    (
                        ast.literal_eval(keyword.value)
                        for keyword in decorator.keywords
                        if keyword.arg == "methods"
                    ),
                    ["GET"],
                )
                routes.update(f"{method} {path}" for method in methods)
    return routes


def chalice_environment_reads(module: ast.Module) -> dict[str, bool]:
    """Environment variables app.py reads: name -> whether it has a default."""
    reads: dict[str, bool] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
            reads[ast.literal_eval(node.args[0])] = len(node.args) > 1
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            reads[ast.literal_eval(node.slice)] = False
    return reads


def test_terraform_routes_are_the_chalice_routes(default_model: TerraformModel) -> None:
    # GIVEN the routes of chalice_app/app.py
    routes = chalice_routes(_chalice_module())
    # WHEN comparing them with the API Terraform declares
    declared = terraform_routes(default_model)
    # THEN both serve exactly the seed-000 routes
    assert routes == declared == EXPECTED_ROUTES


def test_chalice_handlers_exist(default_model: TerraformModel) -> None:
    # GIVEN the module-level names of chalice_app/app.py
    module = _chalice_module()
    names = {node.name for node in module.body if isinstance(node, ast.FunctionDef)}
    names |= {
        target.id
        for node in module.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    # WHEN resolving each function's handler "app.<name>"
    handlers = {function.attr("handler") for function in default_model.resources("aws_lambda_function")}
    # THEN every handler names something app.py defines
    assert {handler.removeprefix("app.") for handler in handlers} <= names


def test_terraform_sets_what_the_chalice_app_needs(default_model: TerraformModel) -> None:
    # GIVEN the environment variables app.py reads without a default
    required = {
        name for name, has_default in chalice_environment_reads(_chalice_module()).items() if not has_default
    }
    # WHEN comparing them with the functions' environment
    environment = terraform_lambda_environment(default_model)
    # THEN Terraform sets each of them (defaults aside, the app would fail at import)
    assert required - set(environment) - {"AWS_REGION"} == set()
    assert set(APP_QUEUE_NAME_VARIABLES) <= set(chalice_environment_reads(_chalice_module()))


# ---------------------------------------------------------------------------------------------
# The export definition: every Task is bounded, retried and caught
# ---------------------------------------------------------------------------------------------


def task_state_problems(states: dict[str, Any], enclosing_catch: bool = False, path: str = "") -> list[str]:
    """Tasks without TimeoutSeconds, Retry, or a Catch (their own or their enclosing Map's)."""
    problems: list[str] = []
    for name, state in states.items():
        where = f"{path}{name}"
        if state["Type"] == "Task":
            problems += [f"{where}: no {key}" for key in ("TimeoutSeconds", "Retry") if not state.get(key)]
            if not state.get("Catch") and not enclosing_catch:
                problems.append(f"{where}: no Catch (and no enclosing Map with one)")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state["Type"] == "Map" and processor:
            problems += task_state_problems(processor["States"], bool(state.get("Catch")), f"{where}/")
        for index, branch in enumerate(state.get("Branches", [])):
            problems += task_state_problems(branch["States"], bool(state.get("Catch")), f"{where}[{index}]/")
    return problems


@pytest.mark.parametrize("deployment_index", range(len(DEPLOYMENTS)), ids=[item.name for item in DEPLOYMENTS])
def test_every_task_has_timeout_retry_and_catch(deployment_index: int) -> None:
    for machine in spec_for(DEPLOYMENTS[deployment_index]).state_machines:
        # GIVEN a definition rendered exactly as Terraform's templatefile renders it
        definition = json.loads(machine.render())
        # WHEN walking its states, into Map item processors
        problems = task_state_problems(definition["States"])
        # THEN every Task is bounded in time, retried and caught
        assert problems == []


def test_task_check_finds_an_unbounded_task() -> None:
    # GIVEN a Map whose inner Task has no timeout and which has no Catch
    states = {
        "Chunks": {
            "Type": "Map",
            "ItemProcessor": {
                "States": {"Work": {"Type": "Task", "Retry": [{"ErrorEquals": ["States.ALL"]}]}}
            },
        }
    }
    # WHEN checking it
    problems = task_state_problems(states)
    # THEN both omissions are reported
    assert problems == [
        "Chunks/Work: no TimeoutSeconds",
        "Chunks/Work: no Catch (and no enclosing Map with one)",
    ]


# ---------------------------------------------------------------------------------------------
# The comparisons really fail on disagreement (on a copy of the Terraform)
# ---------------------------------------------------------------------------------------------

MUTATIONS = [
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-export-jobs"',
        '"${var.stack_name}-export-job"',
        "queues",
        id="queue-name",
    ),
    pytest.param(
        "locals.tf",
        "var.chunk_timeout_seconds + 60",
        "var.chunk_timeout_seconds + 30",
        "queues",
        id="visibility",
    ),
    pytest.param(
        "locals.tf",
        "max_receive_count          = 5\n      service_senders            = []\n    }\n    export_jobs",
        "max_receive_count          = 4\n      service_senders            = []\n    }\n    export_jobs",
        "queues",
        id="receive-count",
    ),
    pytest.param(
        "modules/queues/main.tf",
        '"${each.value.name}-dlq"',
        '"${each.value.name}-dead"',
        "queues",
        id="dlq-name",
    ),
    pytest.param(
        "modules/queues/main.tf", "var.dlq_message_retention_seconds", "345600", "queues", id="dlq-retention"
    ),
    pytest.param(
        "locals.tf",
        '-hes-exports-${local.account_id}"',
        '-exports-${local.account_id}"',
        "buckets",
        id="bucket",
    ),
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-hes-exports-${local.account_id}"',
        '"${var.stack_name}-hes-exports"',
        "buckets",
        id="bucket-account",
    ),
    pytest.param(
        "locals.tf",
        'hash_key      = "request_id"\n      range_key     = null\n      ttl_attribute = "expires_at"',
        'hash_key      = "request_id"\n      range_key     = null\n      ttl_attribute = "expiry"',
        "tables",
        id="ttl",
    ),
    pytest.param(
        "locals.tf", 'hash_key      = "request_id"', 'hash_key      = "id"', "tables", id="hash-key"
    ),
    pytest.param(
        "locals.tf",
        '"${var.stack_name}/sftp/private_key"',
        '"${var.stack_name}/sftp/key"',
        "secrets",
        id="secret",
    ),
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-hes-export"',
        '"${var.stack_name}-export"',
        "state_machines",
        id="machine",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "    finalize_heartbeat_seconds = var.finalize_heartbeat_seconds\n",
        "",
        "state_machines",
        id="template-var",
    ),
    pytest.param(
        "main.tf",
        "max_concurrency            = var.export_max_concurrency",
        "max_concurrency            = 2",
        "state_machines",
        id="template-value",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "/../state_machines/hes_export.asl.json",
        "/../state_machines/other.asl.json",
        "state_machines",
        id="definition",
    ),
    pytest.param("locals.tf", "MF_EXPORTS_BUCKET ", "MF_BUCKET ", "lambda_environment", id="env-name"),
    pytest.param(
        "variables.tf", "default     = 20230227", "default     = 1", "lambda_environment", id="env-default"
    ),
    pytest.param(
        "locals.tf", '    { method = "POST", path = "/readings/file" },\n', "", "routes", id="route"
    ),
    # The lake
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-inbound-${local.account_id}"',
        '"${var.stack_name}-landing-${local.account_id}"',
        "buckets",
        id="lake-bucket",
    ),
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-lake-jobs"',
        '"${var.stack_name}-lake-job"',
        "queues",
        id="lake-queue",
    ),
    pytest.param(
        "locals.tf",
        "local.lake_job_timeout_seconds + 60",
        "local.lake_job_timeout_seconds + 30",
        "queues",
        id="lake-visibility",
    ),
    pytest.param(
        "locals.tf",
        "visibility_timeout_seconds = 300",
        "visibility_timeout_seconds = 600",
        "queues",
        id="late-reads-visibility",
    ),
    pytest.param(
        "locals.tf", 'hash_key      = "integration_id"', 'hash_key      = "id"', "tables", id="lake-hash-key"
    ),
    pytest.param(
        "locals.tf", '"${var.stack_name}-lake-files"', '"${var.stack_name}-files"', "tables", id="lake-table"
    ),
    pytest.param(
        "locals.tf", '"${var.stack_name}-alerts"', '"${var.stack_name}-alarms"', "topics", id="topic"
    ),
    pytest.param(
        "main.tf",
        "prefix    = local.inbound_prefixes.uncompressed",
        'prefix    = "landing/"',
        "notifications",
        id="notification-prefix",
    ),
    pytest.param(
        "main.tf",
        'queue_arn = module.queues.policy_attached_queue_arns["uncompressed_objects"]',
        'queue_arn = module.queues.policy_attached_queue_arns["late_reads"]',
        "notifications",
        id="notification-queue",
    ),
    pytest.param(
        "modules/storage/main.tf",
        'events        = ["s3:ObjectCreated:*"]',
        'events        = ["s3:ObjectCreated:Put"]',
        "notifications",
        id="notification-events",
    ),
    pytest.param(
        "main.tf",
        'late_reads_detail_type  = "LateReadsStaged"',
        'late_reads_detail_type  = "LateReads"',
        "event_rules",
        id="event-pattern",
    ),
    pytest.param(
        "main.tf",
        'late_reads_queue_arn    = module.queues.queue_arns["late_reads"]',
        'late_reads_queue_arn    = module.queues.queue_arns["lake_jobs"]',
        "event_rules",
        id="event-target",
    ),
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-input-adapter-scheduler"\n    }\n    functions',
        '"${var.stack_name}-input-adapters"\n    }\n    functions',
        "schedules",
        id="schedule-name",
    ),
    pytest.param(
        "modules/events/main.tf",
        "rate(${var.scheduler_rate_minutes} ",
        "rate(${var.scheduler_rate_minutes * 2} ",
        "schedules",
        id="schedule-rate",
    ),
    pytest.param(
        "main.tf",
        'scheduler_function_arn  = module.functions.function_arns["input_adapter_scheduler"]',
        'scheduler_function_arn  = module.functions.function_arns["lake_worker"]',
        "schedules",
        id="schedule-target",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "    ingest_poll_max_attempts     = var.lake_tuning.ingest_poll_max_attempts\n",
        "",
        "state_machines",
        id="lake-template-var",
    ),
    pytest.param(
        "main.tf",
        "finalize_timeout_seconds     = var.lake_finalize_timeout_seconds",
        "finalize_timeout_seconds     = var.finalize_timeout_seconds",
        "state_machines",
        id="lake-template-value",
    ),
    pytest.param(
        "main.tf",
        "alerts_topic_arn             = module.alerts.topic_arn",
        'alerts_topic_arn             = "arn:aws:sns:us-east-1:123456789012:meterflow-alerts"',
        "state_machines",
        id="lake-template-reference",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "/../state_machines/lake_ingest.asl.json",
        "/../state_machines/input_adapter.asl.json",
        "state_machines",
        id="lake-definition",
    ),
    pytest.param(
        "locals.tf", '"-", "_")}_lake"', '"-", "_")}_datalake"', "glue_database", id="glue-database"
    ),
    pytest.param(
        "lake_tables.tf",
        'range           = ["1", "12"]',
        'range           = ["1", "13"]',
        "glue_tables",
        id="projection-range",
    ),
    pytest.param(
        "lake_tables.tf",
        'projection_type = "enum"',
        'projection_type = "injected"',
        "glue_tables",
        id="projection-type",
    ),
    pytest.param(
        "lake_tables.tf",
        '"kw", "vltg", "kwh"]',
        '"kw", "vltg"]',
        "glue_tables",
        id="projection-values",
    ),
    pytest.param(
        "lake_tables.tf",
        'format          = "yyyy-MM-dd"',
        'format          = "yyyy/MM/dd"',
        "glue_tables",
        id="projection-format",
    ),
    pytest.param(
        "lake_tables.tf", "digits          = 4", "digits          = 2", "glue_tables", id="projection-digits"
    ),
    pytest.param(
        "modules/catalog/main.tf",
        '"${key.name}=$${${key.name}}"',
        '"$${${key.name}}"',
        "glue_tables",
        id="location-template",
    ),
    pytest.param(
        "lake_tables.tf", 'prefix = "weather"', 'prefix = "weather/daily"', "glue_tables", id="table-prefix"
    ),
    pytest.param(
        "lake_tables.tf",
        '{ name = "reading_value", type = "double" }',
        '{ name = "reading_value", type = "float" }',
        "glue_tables",
        id="column-type",
    ),
    pytest.param(
        "lake_tables.tf",
        '        { name = "acorn", type = "string" },\n',
        "",
        "glue_tables",
        id="column",
    ),
    pytest.param(
        "lake_tables.tf",
        'name            = "hour"',
        'name            = "hh"',
        "glue_tables",
        id="partition-key",
    ),
    pytest.param(
        "locals.tf",
        'athena_workgroup = "${var.stack_name}-lake"',
        'athena_workgroup = "${var.stack_name}-athena"',
        "athena_workgroup",
        id="workgroup",
    ),
    pytest.param(
        "locals.tf", '    { method = "GET", path = "/lake/queries/{name}" },\n', "", "routes", id="lake-route"
    ),
    pytest.param("locals.tf", "MF_GLUE_DATABASE ", "MF_GLUE_DB ", "lambda_environment", id="lake-env-name"),
    pytest.param(
        "locals.tf",
        'MF_LAKE_JOBS_QUEUE_URL             = module.queues.queue_urls["lake_jobs"]',
        'MF_LAKE_JOBS_QUEUE_URL             = module.queues.queue_urls["late_reads"]',
        "lambda_environment",
        id="lake-env-reference",
    ),
    pytest.param(
        "variables.tf",
        "default     = 16777216",
        "default     = 8388608",
        "lambda_environment",
        id="lake-env-default",
    ),
    # The on-premises bridge
    pytest.param(
        "locals.tf",
        '"${var.stack_name}-site-dispatch"',
        '"${var.stack_name}-site-jobs"',
        "queues",
        id="bridge-queue",
    ),
    pytest.param(
        "locals.tf",
        "local.names.queues.site_messages\n      visibility_timeout_seconds = 60",
        "local.names.queues.site_messages\n      visibility_timeout_seconds = 30",
        "queues",
        id="bridge-visibility",
    ),
    pytest.param(
        "locals.tf",
        "queues.site_dispatch\n      visibility_timeout_seconds = 60\n      max_receive_count          = 5",
        "queues.site_dispatch\n      visibility_timeout_seconds = 60\n      max_receive_count          = 1",
        "queues",
        id="bridge-receive-count",
    ),
    pytest.param(
        "locals.tf", 'hash_key      = "job_id"', 'hash_key      = "id"', "tables", id="bridge-hash-key"
    ),
    pytest.param(
        "locals.tf",
        'hash_key      = "job_id"\n      range_key     = null\n      ttl_attribute = "expires_at"',
        'hash_key      = "job_id"\n      range_key     = null\n      ttl_attribute = null',
        "tables",
        id="bridge-ttl",
    ),
    pytest.param(
        "locals.tf",
        'historian_backfill = "${var.stack_name}-historian-backfill"',
        'historian_backfill = "${var.stack_name}-backfill"',
        "state_machines",
        id="bridge-machine",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "    site_max_attempts           = var.bridge_tuning.site_max_attempts\n",
        "",
        "state_machines",
        id="bridge-template-var",
    ),
    pytest.param(
        "main.tf",
        "site_retry_interval_seconds = var.site_retry_interval_seconds",
        "site_retry_interval_seconds = 30",
        "state_machines",
        id="bridge-template-value",
    ),
    pytest.param(
        "main.tf",
        'site_dispatch_queue_url           = module.queues.queue_urls["site_dispatch"]',
        'site_dispatch_queue_url           = module.queues.queue_urls["lake_jobs"]',
        "state_machines",
        id="bridge-template-reference",
    ),
    pytest.param(
        "modules/workflows/main.tf",
        "/../state_machines/historian_backfill.asl.json",
        "/../state_machines/input_adapter.asl.json",
        "state_machines",
        id="bridge-definition",
    ),
    pytest.param(
        "locals.tf",
        '    { method = "POST", path = "/jobs/{job_id}/cancel" },\n',
        "",
        "routes",
        id="bridge-route",
    ),
    pytest.param(
        "locals.tf",
        '{ method = "POST", path = "/backfills" }',
        '{ method = "PUT", path = "/backfills" }',
        "routes",
        id="bridge-route-method",
    ),
    pytest.param(
        "locals.tf", "MF_BRIDGE_JOBS_TABLE ", "MF_BRIDGE_TABLE ", "lambda_environment", id="bridge-env-name"
    ),
    pytest.param(
        "locals.tf",
        'MF_SITE_PUBLISH               = "iot-data"',
        'MF_SITE_PUBLISH               = "mqtt"',
        "lambda_environment",
        id="bridge-env-value",
    ),
    pytest.param(
        "locals.tf",
        "= module.workflows.historian_backfill_state_machine_arn",
        "= module.workflows.input_adapter_state_machine_arn",
        "lambda_environment",
        id="bridge-env-reference",
    ),
    pytest.param(
        "locals.tf",
        "MF_SITE_MESSAGES_QUEUE_NAME        = local.names.queues.site_messages",
        "MF_SITE_MESSAGES_QUEUE_NAME        = local.names.queues.site_dispatch",
        "lambda_environment",
        id="bridge-env-queue-name",
    ),
    pytest.param(
        "modules/iot/main.tf",
        'endpoint_type = "iot:Data-ATS"',
        'endpoint_type = "iot:Data"',
        "lambda_environment",
        id="iot-endpoint-type",
    ),
    pytest.param(
        "locals.tf",
        'site_to_cloud = ["results", "progress", "heartbeats"]',
        'site_to_cloud = ["results", "progress"]',
        "site_rules",
        id="rule-channels",
    ),
    pytest.param(
        "modules/iot/main.tf", "topic() AS topic FROM", "topic() AS name FROM", "site_rules", id="rule-sql"
    ),
    pytest.param(
        "main.tf",
        'site_messages_queue_url = module.queues.queue_urls["site_messages"]',
        'site_messages_queue_url = module.queues.queue_urls["site_dispatch"]',
        "site_rules",
        id="rule-target",
    ),
    pytest.param(
        "main.tf",
        'error_queue_url         = module.queues.dlq_urls["site_messages"]',
        'error_queue_url         = module.queues.queue_urls["site_messages"]',
        "site_rules",
        id="rule-error-target",
    ),
    pytest.param(
        "modules/iot/main.tf",
        "use_base64 = false\n  }\n\n  error_action",
        "use_base64 = true\n  }\n\n  error_action",
        "site_rules",
        id="rule-base64",
    ),
    pytest.param(
        "locals.tf",
        'cloud_to_site = ["jobs", "cancel"]',
        'cloud_to_site = ["jobs", "cancel", "results"]',
        "worker_policy",
        id="policy-channels",
    ),
    pytest.param(
        "modules/iot/main.tf",
        'client/$${iot:Connection.Thing.ThingName}"',
        'client/*"',
        "worker_policy",
        id="policy-client-id",
    ),
    pytest.param(
        "modules/iot/main.tf",
        '"iot:Connection.Thing.IsAttached" = "true"',
        '"iot:Connection.Thing.IsAttached" = "false"',
        "worker_policy",
        id="policy-attached",
    ),
    pytest.param(
        "modules/iot/main.tf",
        "/$${iot:Connection.Thing.Attributes[tenant]}/",
        "/+/",
        "worker_policy",
        id="policy-tenant",
    ),
    pytest.param(
        "modules/iot/main.tf",
        'Action   = "iot:Publish"\n        Resource = [for channel in var.site_to_cloud_channels',
        'Action   = "iot:Publish"\n        Resource = [for channel in var.cloud_to_site_channels',
        "worker_policy",
        id="policy-publish",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "aspect"), MUTATIONS)
def test_comparison_fails_when_terraform_drifts(
    tmp_path: Path,
    terraform_dir: Path,
    model_factory: ModelFactory,
    file: str,
    old: str,
    new: str,
    aspect: str,
) -> None:
    # GIVEN a copy of the Terraform with one change that stack.py does not have
    copy = tmp_path / "terraform"
    shutil.copytree(terraform_dir, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    target = copy / file
    assert target.read_text().count(old) == 1, f"mutation anchor {old!r} is not unique in {file}"
    target.write_text(target.read_text().replace(old, new))
    deployment = DEPLOYMENTS[0]
    # WHEN comparing the copy with the spec
    terraform_side, spec_side = COMPARISONS[aspect](
        model_for(model_factory, copy, deployment), spec_for(deployment)
    )
    # THEN the comparison reports the difference
    assert terraform_side != spec_side
