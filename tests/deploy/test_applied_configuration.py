"""The configuration ``terraform apply`` deployed is the one the code needs, read from the applied state.

test_terraform_apply.py compares what the local runtime also creates (queues, tables, buckets,
notifications, event rules, state machine definitions, secrets, topics). These tests read what only
the deployment has: the functions' handlers, triggers and environment, the API's routes and
authorization, who may send, invoke, publish and encrypt (IAM, queue and key policies), the IoT
rules and the workers' policy, the Glue catalog and the Athena workgroup, the root outputs. Each
expectation comes from the code (meterflow/localcloud/stack.py, the settings classes, catalog.py,
onprem_worker/contracts.py, the Chalice app and its Blueprints read with ast), not from the Terraform.

Every comparison asserts that what it inspects exists, and ``test_comparison_notices_a_change``
changes one value of a copy of the applied state per comparison to show it can fail.

This file sorts before test_terraform_apply.py, whose last test destroys the stack.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from meterflow.bridge.domain.jobs import site_message_from_rule
from meterflow.bridge.settings import BridgeSettings
from meterflow.core.settings import check_settings
from meterflow.hes.settings import HesSettings
from meterflow.lake.domain.catalog import LAKE_TABLES, LakeTable
from meterflow.lake.settings import LakeSettings
from meterflow.localcloud.local_cloud import SFTP_USER
from meterflow.localcloud.stack import StackSpec
from onprem_worker.contracts import CLOUD_TO_SITE, SITE_TO_CLOUD, TOPIC_ROOT, Channel
from tests.deploy.applied_state import (
    AppliedState,
    ChaliceAppFacts,
    Resource,
    Statement,
    as_list,
    chalice_app_facts,
    statements,
)
from tests.deploy.conftest import AppliedStack, Deployment
from tests.deploy.stack_facts import normalize_queue_urls

pytestmark = pytest.mark.deploy

# The seed-000 API (design.md section 3), the lake's query route and the bridge's routes:
# The Chalice app serves exactly these, and so does the API Gateway.
SEED_000_ROUTES = frozenset({"GET /readings", "GET /readings/file", "POST /readings/file"})
LAKE_ROUTES = frozenset({"GET /lake/queries/{name}"})
BRIDGE_ROUTES = frozenset({"POST /backfills", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel"})
EXPECTED_ROUTES = SEED_000_ROUTES | LAKE_ROUTES | BRIDGE_ROUTES
# The lake worker is the input adapter's HES client: it requests files and polls them.
INVOKE_GRANTS = {"lake_worker": frozenset({"POST /readings/file", "GET /readings/file"})}
# Function (Terraform key) -> the Chalice handler its image runs.
HANDLERS = {
    "api": "app.app",
    "start_file_export": "app.start_file_export",
    "export_worker": "app.run_export_job",
    "lake_worker": "app.run_lake_job",
    "start_file_ingest": "app.start_file_ingest",
    "merge_late_reads": "app.merge_late_reads",
    "input_adapter_scheduler": "app.schedule_input_adapters",
    "bridge_worker": "app.run_bridge_job",
    "site_dispatcher": "app.dispatch_site_jobs",
    "site_messages": "app.handle_site_messages",
}
# The variables the blueprints read queue names from at import time (on_sqs_message) -> the queue.
APP_QUEUE_NAME_VARIABLES = {
    "MF_HES_FILE_REQUESTS_QUEUE_NAME": "file_requests",
    "MF_HES_EXPORT_JOBS_QUEUE_NAME": "export_jobs",
    "MF_LAKE_JOBS_QUEUE_NAME": "lake_jobs",
    "MF_LAKE_UNCOMPRESSED_OBJECTS_QUEUE_NAME": "uncompressed_objects",
    "MF_LAKE_LATE_READS_QUEUE_NAME": "late_reads",
    "MF_BRIDGE_JOBS_QUEUE_NAME": "bridge_jobs",
    "MF_BRIDGE_SITE_DISPATCH_QUEUE_NAME": "site_dispatch",
    "MF_BRIDGE_SITE_MESSAGES_QUEUE_NAME": "site_messages",
}
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
# What the IoT topic rules put on the site-messages queue (meterflow/bridge/domain/jobs.py
# site_message_from_rule): the MQTT payload base64-encoded, and its topic.
SITE_RULE_SQL = "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM '{topic_filter}'"
# The functions publish to sites through IoT Core's data plane on the ATS endpoint.
IOT_DATA_ENDPOINT_TYPE = "iot:Data-ATS"
# BridgeSettings fields of MF_BRIDGE_SITE_PUBLISH=mqtt only (a broker, with the bridge's own certificate):
# unused in AWS, where the cloud publishes through IoT Core (iot-data), so Terraform leaves them out.
MQTT_ONLY_FIELD_PREFIX = "mqtt_"
NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
IOT_POLICY_MAX_CHARACTERS = 2048
LONGEST_STACK_NAME = "a" * 32  # var.stack_name's validation
LONG_REGION = "ap-southeast-2"
# Actions IAM grants on "*" only (no resource-level permissions): X-Ray, task-token callbacks,
# the log delivery of Step Functions.
RESOURCELESS_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
# The only managed policy: API Gateway's account-wide CloudWatch role.
MANAGED_POLICIES = frozenset({"arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"})
PARQUET_FORMATS = (
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
)
IOT_RULE_ACTIONS = (
    "cloudwatch_alarm",
    "cloudwatch_logs",
    "cloudwatch_metric",
    "dynamodb",
    "dynamodbv2",
    "elasticsearch",
    "firehose",
    "http",
    "iot_analytics",
    "iot_events",
    "kafka",
    "kinesis",
    "lambda",
    "republish",
    "s3",
    "sns",
    "sqs",
    "step_functions",
    "timestream",
)


@dataclass(frozen=True)
class Expected:
    """What the code says the deployment must be."""

    deployment: Deployment
    spec: StackSpec
    app: ChaliceAppFacts

    @property
    def account_id(self) -> str:
        return self.deployment.account_id

    @property
    def region(self) -> str:
        return self.deployment.region


@pytest.fixture(scope="module")
def applied(applied_stack: AppliedStack) -> AppliedState:
    return AppliedState(applied_stack.state())


@pytest.fixture(scope="module")
def expected(deployment: Deployment) -> Expected:
    return Expected(deployment, deployment.spec(), chalice_app_facts())


# ---------------------------------------------------------------------------------------------
# Reading the applied state
# ---------------------------------------------------------------------------------------------


def functions(state: AppliedState) -> dict[str, Resource]:
    return {str(key): function for key, function in state.keyed("aws_lambda_function", "this").items()}


def function_environment(function: Resource) -> dict[str, str]:
    (environment,) = function.values["environment"]
    return dict(environment["variables"])


def queues_by_arn(state: AppliedState) -> dict[str, Resource]:
    queues = {queue.values["arn"]: queue for queue in state.resources("aws_sqs_queue")}
    assert queues, "no queues in the applied state"
    return queues


def queue_name_of_url(url: str) -> str:
    return normalize_queue_urls(url).rsplit("/", 1)[-1]


def role_owners(state: AppliedState, spec: StackSpec) -> dict[str, str]:
    """Role name -> who acts with it: the function key, the state machine key (stack_spec), or for
    other roles their name without the stack's prefix."""
    owners = {
        role.values["name"]: role.values["name"].removeprefix(f"{spec.stack_name}-")
        for role in state.resources("aws_iam_role")
    }
    for key, function in functions(state).items():
        owners[function.values["role"].rsplit("/", 1)[-1]] = key
    machine_keys = {machine.name: machine.key for machine in spec.state_machines}
    for machine in state.resources("aws_sfn_state_machine"):
        owners[machine.values["role_arn"].rsplit("/", 1)[-1]] = machine_keys[machine.values["name"]]
    return owners


def granted(state: AppliedState, spec: StackSpec, action: str) -> dict[str, list[str]]:
    """Who (see role_owners) may do ``action``, on which resources, over every role policy."""
    owners = role_owners(state, spec)
    found: dict[str, list[str]] = {}
    for policy in state.resources("aws_iam_role_policy"):
        for statement in statements(policy.values["policy"]):
            if statement.effect == "Allow" and any(
                fnmatch.fnmatchcase(action, pattern) for pattern in statement.actions
            ):
                found.setdefault(owners[policy.values["role"]], []).extend(statement.resources)
    return {owner: sorted(resources) for owner, resources in found.items()}


def api_routes_by_method(state: AppliedState) -> dict[tuple[str, str], str]:
    """(resource id, HTTP method) -> "METHOD /path" of every API method."""
    paths = {
        resource.values["id"]: resource.values["path"]
        for resource in state.resources("aws_api_gateway_resource")
    }
    routes = {}
    for method in state.resources("aws_api_gateway_method"):
        values = method.values
        routes[(values["resource_id"], values["http_method"])] = (
            f"{values['http_method']} {paths[values['resource_id']]}"
        )
    return routes


def execute_api_route(arn: str, execution_arn: str, stage: str) -> str:
    """``<execution arn>/<stage>/POST/readings/file`` -> ``POST /readings/file``."""
    prefix = f"{execution_arn}/{stage}/"
    assert arn.startswith(prefix), f"{arn} is not a route of stage {stage} of {execution_arn}"
    method, path = arn.removeprefix(prefix).split("/", 1)
    return f"{method} /{path}"


# ---------------------------------------------------------------------------------------------
# Comparisons: (applied, expected), equal when the deployment is right
# ---------------------------------------------------------------------------------------------


def compare_handlers(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Function -> (image command, tracing) ; expected: HANDLERS, each a handler app.py defines."""
    assert set(HANDLERS.values()) == expected.app.handlers, "HANDLERS and the Chalice app disagree"
    applied = {
        key: (
            tuple(function.values["image_config"][0]["command"]),
            tuple(item["mode"] for item in function.values["tracing_config"]),
            function.values["package_type"],
        )
        for key, function in functions(state).items()
    }
    return applied, {key: ((handler,), ("Active",), "Image") for key, handler in HANDLERS.items()}


def compare_sqs_triggers(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Function -> (queue, batch size, response types, enabled) of its SQS event source mapping."""
    queues = queues_by_arn(state)
    by_arn = {function.values["arn"]: key for key, function in functions(state).items()}
    applied = {}
    for mapping in state.resources("aws_lambda_event_source_mapping"):
        values = mapping.values
        applied[by_arn[values["function_name"]]] = (
            queues[values["event_source_arn"]].values["name"],
            values["batch_size"],
            tuple(values["function_response_types"]),
            values["enabled"],
        )
    handler_keys = {handler: key for key, handler in HANDLERS.items()}
    wanted = {}
    for function_name, (variable, batch_size) in expected.app.sqs_handlers.items():
        queue = expected.spec.queue(APP_QUEUE_NAME_VARIABLES[variable]).name
        # ReportBatchItemFailures: a failed message is retried alone, not with its batch.
        wanted[handler_keys[f"app.{function_name}"]] = (queue, batch_size, ("ReportBatchItemFailures",), True)
    assert wanted, "the Chalice app has no SQS handlers"
    return applied, wanted


def _number(value: Any) -> Any:
    """Numbers compare by value: Terraform prints 15, HesSettings.to_env() prints str(15.0)."""
    return float(value) if isinstance(value, str) and NUMBER_TEXT.fullmatch(value) else value


def mqtt_only_variables(settings: BridgeSettings) -> set[str]:
    """The variables of to_env() that carry the MQTT transport's fields (whatever they are named)."""
    changed: dict[str, Any] = {
        name: (getattr(settings, name) + 1 if item.annotation is int else "probe")
        for name, item in BridgeSettings.model_fields.items()
        if name.startswith(MQTT_ONLY_FIELD_PREFIX)
    }
    probe = settings.model_copy(update=changed).to_env()
    found = {key for key, value in settings.to_env().items() if probe[key] != value}
    assert found, "BridgeSettings has no MQTT fields any more: revisit MQTT_ONLY_FIELD_PREFIX"
    return found


def iot_data_endpoint(state: AppliedState) -> str:
    (endpoint,) = state.data("aws_iot_endpoint")
    assert endpoint.values["endpoint_type"] == IOT_DATA_ENDPOINT_TYPE, endpoint.values
    return str(endpoint.values["endpoint_address"])


def expected_lambda_environment(spec: StackSpec, iot_endpoint: str) -> dict[str, Any]:
    """Every variable the settings classes read, at their defaults, with this stack's resources."""
    resources = {
        "MF_HES_STACK_NAME": spec.stack_name,
        "AWS_REGION": spec.region,
        "MF_HES_FILE_REQUESTS_TABLE": spec.table("file_requests").name,
        "MF_HES_FILE_REQUESTS_QUEUE_URL": spec.queue_url("file_requests"),
        "MF_HES_EXPORT_JOBS_QUEUE_URL": spec.queue_url("export_jobs"),
        "MF_HES_EXPORTS_BUCKET": spec.bucket("hes_exports").name,
        "MF_HES_EXPORT_STATE_MACHINE_ARN": spec.state_machine_arn("hes_export"),
        "MF_INBOUND_BUCKET": spec.bucket("inbound").name,
        "MF_LAKE_INTEGRATED_BUCKET": spec.bucket("integrated").name,
        "MF_LAKE_JOBS_QUEUE_URL": spec.queue_url("lake_jobs"),
        "MF_LAKE_INTEGRATIONS_TABLE": spec.table("integrations").name,
        "MF_LAKE_FILES_TABLE": spec.table("lake_files").name,
        "MF_LAKE_INGEST_STATE_MACHINE_ARN": spec.state_machine_arn("lake_ingest"),
        "MF_LAKE_INPUT_ADAPTER_STATE_MACHINE_ARN": spec.state_machine_arn("input_adapter"),
        "MF_LAKE_ALERTS_TOPIC_ARN": spec.topic_arn("alerts"),
        "MF_LAKE_GLUE_DATABASE": spec.glue_database,
        "MF_LAKE_ATHENA_WORKGROUP": spec.athena_workgroup,
        "MF_LAKE_QUERY_ENGINE": "athena",
        "MF_BRIDGE_JOBS_TABLE": spec.table("bridge_jobs").name,
        "MF_BRIDGE_BACKFILL_STATE_MACHINE_ARN": spec.state_machine_arn("historian_backfill"),
        "MF_BRIDGE_SITE_PUBLISH": "iot-data",
        "MF_BRIDGE_IOT_DATA_ENDPOINT": iot_endpoint,
    }
    bridge = BridgeSettings.from_env(resources)
    mqtt_only = mqtt_only_variables(bridge)
    settings = {
        **LakeSettings.from_env(resources).to_env(),
        **HesSettings.from_env(resources).to_env(),
        **{key: value for key, value in bridge.to_env().items() if key not in mqtt_only},
    }
    # AWS_REGION is reserved in Lambda: the runtime sets it, a function may not.
    environment = {
        key: _number(normalize_queue_urls(value)) for key, value in settings.items() if key != "AWS_REGION"
    }
    # Read by the Blueprints at import time: the queues of on_sqs_message, the schedule rate.
    environment.update({variable: spec.queue(key).name for variable, key in APP_QUEUE_NAME_VARIABLES.items()})
    (scheduler,) = spec.schedules
    environment["MF_LAKE_SCHEDULER_RATE_MINUTES"] = _number(str(scheduler.rate_minutes))
    return environment


def compare_lambda_environment(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Function -> its environment; expected: the same for every function."""
    wanted = expected_lambda_environment(expected.spec, iot_data_endpoint(state))
    applied = {
        key: {
            name: _number(normalize_queue_urls(value))
            for name, value in function_environment(function).items()
        }
        for key, function in functions(state).items()
    }
    return applied, dict.fromkeys(HANDLERS, wanted)


def compare_routes(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """The API's routes; expected: the routes of the Chalice app, which are the contract's."""
    assert expected.app.routes == EXPECTED_ROUTES, "the Chalice app serves other routes than the contract"
    return sorted(api_routes_by_method(state).values()), sorted(EXPECTED_ROUTES)


def compare_invoke_grants(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Role (function) -> the routes it may call with SigV4."""
    api = state.one("aws_api_gateway_rest_api").values
    stage = state.one("aws_api_gateway_stage").values["stage_name"]
    owners = role_owners(state, expected.spec)
    applied: dict[str, frozenset[str]] = {}
    for policy in state.resources("aws_iam_role_policy", "invoke", "module.api"):
        routes = set()
        for statement in statements(policy.values["policy"]):
            assert (statement.effect, statement.actions) == ("Allow", ("execute-api:Invoke",)), statement
            routes |= {execute_api_route(arn, api["execution_arn"], stage) for arn in statement.resources}
        applied[owners[policy.values["role"]]] = frozenset(routes)
    return applied, INVOKE_GRANTS


def _queue_senders(document: str, account_id: str) -> dict[str, list[str]]:
    """Service principal -> the aws:SourceArn values of a queue policy's Allow statements."""
    senders: dict[str, list[str]] = {}
    for statement in statements(document):
        if statement.effect != "Allow":
            continue
        assert statement.actions == ("sqs:SendMessage",), statement
        assert statement.condition("StringEquals", "aws:SourceAccount") == (account_id,), statement
        for kind, service in statement.principals:
            assert kind == "Service", statement
            senders.setdefault(service, []).extend(statement.condition("ArnEquals", "aws:SourceArn"))
    return senders


def compare_queue_senders(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Queue -> the AWS services its policy admits and from where; every queue and DLQ included."""
    by_url = {queue.values["url"]: queue.values["name"] for queue in state.resources("aws_sqs_queue")}
    applied = {
        by_url[policy.values["queue_url"]]: _queue_senders(policy.values["policy"], expected.account_id)
        for policy in state.resources("aws_sqs_queue_policy")
    }
    spec = expected.spec
    wanted: dict[str, dict[str, list[str]]] = {}
    for queue in spec.queues:
        wanted[queue.name] = {}
        wanted[queue.dlq_name] = {}
    for notification in spec.notifications:
        bucket = spec.bucket(notification.bucket_key).name
        wanted[spec.queue(notification.queue_key).name] = {"s3.amazonaws.com": [f"arn:aws:s3:::{bucket}"]}
    for rule in spec.event_rules:
        rule_arn = f"arn:aws:events:{spec.region}:{spec.account_id}:rule/{rule.name}"
        wanted[spec.queue(rule.queue_key).name] = {"events.amazonaws.com": [rule_arn]}
    return applied, wanted


def compare_key_grants(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Service -> the queues the key policy lets it encrypt for (encryption context aws:sqs:arn)."""
    key = state.one("aws_kms_key")
    grants: dict[str, list[str]] = {}
    for statement in statements(key.values["policy"]):
        queues = statement.condition("StringEquals", "kms:EncryptionContext:aws:sqs:arn")
        if not queues:
            continue
        assert statement.actions == ("kms:Decrypt", "kms:GenerateDataKey"), statement
        for _, service in statement.principals:
            grants.setdefault(service, []).extend(queues)
    spec = expected.spec
    wanted: dict[str, list[str]] = {}
    for notification in spec.notifications:
        wanted.setdefault("s3.amazonaws.com", []).append(spec.queue_arn(notification.queue_key))
    for rule in spec.event_rules:
        wanted.setdefault("events.amazonaws.com", []).append(spec.queue_arn(rule.queue_key))
    return grants, wanted


def compare_redrive_allow(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """DLQ -> (permission, the queues that may move messages into it)."""
    by_url = {queue.values["url"]: queue.values["name"] for queue in state.resources("aws_sqs_queue")}
    applied = {}
    for policy in state.resources("aws_sqs_queue_redrive_allow_policy"):
        allowed = json.loads(policy.values["redrive_allow_policy"])
        applied[by_url[policy.values["queue_url"]]] = (
            allowed["redrivePermission"],
            sorted(arn.rsplit(":", 1)[-1] for arn in allowed.get("sourceQueueArns", [])),
        )
    return applied, {queue.dlq_name: ("byQueue", [queue.name]) for queue in expected.spec.queues}


def compare_schedules(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Scheduled rule -> (expression, target handler, the permission that lets it invoke the target)."""
    functions_by_arn = {function.values["arn"]: function for function in functions(state).values()}
    targets = state.resources("aws_cloudwatch_event_target")
    permissions = [
        permission
        for permission in state.resources("aws_lambda_permission")
        if permission.values["principal"] == "events.amazonaws.com"
    ]
    applied = {}
    for rule in state.resources("aws_cloudwatch_event_rule"):
        if not rule.values.get("schedule_expression"):
            continue
        (target,) = [target for target in targets if target.values["rule"] == rule.values["name"]]
        function = functions_by_arn[target.values["arn"]]
        admitted = [
            (permission.values["action"], permission.values["function_name"])
            for permission in permissions
            if permission.values["source_arn"] == rule.values["arn"]
        ]
        applied[rule.values["name"]] = (
            rule.values["schedule_expression"],
            function.values["image_config"][0]["command"][0],
            admitted,
        )
    wanted = {}
    for schedule in expected.spec.schedules:
        # ScheduleSpec.handler is chalice_app.app:f, which the image runs as app.f
        handler = "app." + schedule.handler.split(":")[1]
        function_name = next(
            function.values["function_name"]
            for key, function in functions(state).items()
            if HANDLERS[key] == handler
        )
        wanted[schedule.name] = (
            schedule.schedule_expression,
            handler,
            [("lambda:InvokeFunction", function_name)],
        )
    assert set(expected.app.scheduled_handlers) == {
        schedule.handler.split(":")[1] for schedule in expected.spec.schedules
    }, "the spec's schedules and the app's schedule functions differ"
    return applied, wanted


@dataclass(frozen=True)
class GlueTableFacts:
    database: str
    table_type: str
    location: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    # partition projection: projection.* and storage.location.template
    projection: tuple[tuple[str, str], ...]
    formats: tuple[str, str, str]


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


def compare_glue_tables(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Glue database and tables; expected: meterflow/lake/domain/catalog.py's tables."""
    applied: dict[str, Any] = {
        "databases": sorted(
            database.values["name"] for database in state.resources("aws_glue_catalog_database")
        )
    }
    for table in state.resources("aws_glue_catalog_table"):
        values = table.values
        (storage,) = values["storage_descriptor"]
        (serde,) = storage["ser_de_info"]
        parameters = values.get("parameters") or {}
        applied[values["name"]] = GlueTableFacts(
            values["database_name"],
            values["table_type"],
            storage["location"],
            tuple((column["name"], column["type"]) for column in storage.get("columns") or []),
            tuple((key["name"], key["type"]) for key in values.get("partition_keys") or []),
            tuple(
                sorted(
                    (key, value)
                    for key, value in parameters.items()
                    if key.startswith("projection.") or key == "storage.location.template"
                )
            ),
            (storage["input_format"], storage["output_format"], serde["serialization_library"]),
        )
    spec = expected.spec
    bucket = spec.bucket("integrated").name
    wanted: dict[str, Any] = {"databases": [spec.glue_database]}
    for lake_table in LAKE_TABLES:
        wanted[lake_table.name] = GlueTableFacts(
            spec.glue_database,
            "EXTERNAL_TABLE",
            f"s3://{bucket}/{lake_table.prefix}/",
            tuple((column.name, column.glue_type) for column in lake_table.columns),
            tuple((column.name, column.glue_type) for column in lake_table.partitions),
            tuple(sorted(projection_parameters(lake_table, bucket).items())),
            PARQUET_FORMATS,
        )
    return applied, wanted


@dataclass(frozen=True)
class SiteRuleFacts:
    sql: str
    sql_version: str
    enabled: bool
    queue: str
    use_base64: bool
    error_queue: str
    other_actions: tuple[str, ...]


def compare_site_rules(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """IoT topic rules: one per site-to-cloud channel, into the site-messages queue (errors: its DLQ)."""
    applied = set()
    for rule in state.resources("aws_iot_topic_rule"):
        values = rule.values
        (sqs,) = values["sqs"]
        (error_action,) = values["error_action"]
        (error_sqs,) = error_action["sqs"]
        applied.add(
            SiteRuleFacts(
                values["sql"],
                values["sql_version"],
                values["enabled"],
                queue_name_of_url(sqs["queue_url"]),
                sqs["use_base64"],
                queue_name_of_url(error_sqs["queue_url"]),
                tuple(
                    action
                    for action in IOT_RULE_ACTIONS
                    if action != "sqs" and (values.get(action) or error_action.get(action))
                ),
            )
        )
    queue = expected.spec.queue("site_messages")
    wanted = {
        SiteRuleFacts(
            SITE_RULE_SQL.format(topic_filter=f"{TOPIC_ROOT}/+/+/{channel.value}"),
            "2016-03-23",
            True,
            queue.name,
            False,
            queue.dlq_name,
            (),
        )
        for channel in SITE_TO_CLOUD
    }
    return applied, wanted


def compare_worker_policy(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Action -> (resources, conditions) of the workers' IoT policy: a worker connects as its own
    registered thing, takes the cloud-to-site channels of its own tenant and answers on the others."""
    thing_type = state.one("aws_iot_thing_type").values["name"]
    policy = state.one("aws_iot_policy").values["policy"]
    applied: dict[str, tuple[tuple[str, ...], dict[tuple[str, str], tuple[str, ...]]]] = {}
    for statement in statements(policy):
        assert statement.effect == "Allow", statement
        (action,) = statement.actions
        assert action not in applied, f"{action} granted twice"
        applied[action] = (statement.resources, dict(statement.conditions))
    arn = f"arn:aws:iot:{expected.region}:{expected.account_id}"
    own = f"{TOPIC_ROOT}/${{iot:Connection.Thing.Attributes[tenant]}}/${{iot:Connection.Thing.ThingName}}"

    def resources(kind: str, channels: tuple[Channel, ...]) -> tuple[str, ...]:
        return tuple(sorted(f"{arn}:{kind}/{own}/{channel.value}" for channel in channels))

    wanted = {
        "iot:Connect": (
            (f"{arn}:client/${{iot:Connection.Thing.ThingName}}",),
            {
                ("Bool", "iot:Connection.Thing.IsAttached"): ("true",),
                ("StringEquals", "iot:Connection.Thing.ThingTypeName"): (thing_type,),
            },
        ),
        "iot:Subscribe": (resources("topicfilter", CLOUD_TO_SITE), {}),
        "iot:Receive": (resources("topic", CLOUD_TO_SITE), {}),
        "iot:Publish": (resources("topic", SITE_TO_CLOUD), {}),
    }
    assert thing_type == f"{expected.deployment.stack_name}-onprem-worker", thing_type
    return applied, wanted


def compare_iot_publishers(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Role (function) -> what it may do in IoT Core, over every role policy of the stack."""
    owners = role_owners(state, expected.spec)
    applied: dict[str, list[tuple[str, str]]] = {}
    for policy in state.resources("aws_iam_role_policy"):
        for statement in statements(policy.values["policy"]):
            iot = [action for action in statement.actions if action.startswith("iot:") or action == "*"]
            if iot:
                applied.setdefault(owners[policy.values["role"]], []).extend(
                    (action, resource) for action in iot for resource in statement.resources
                )
    topic = f"arn:aws:iot:{expected.region}:{expected.account_id}:topic/{TOPIC_ROOT}/*/*"
    # The dispatcher publishes site jobs, the API (its cancel route) cancellations; nothing else.
    wanted = {
        "site_dispatcher": [("iot:Publish", f"{topic}/{Channel.JOBS.value}")],
        "api": [("iot:Publish", f"{topic}/{Channel.CANCEL.value}")],
    }
    return {key: sorted(value) for key, value in applied.items()}, wanted


def compare_queue_consumers(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Who may receive from which queue: each SQS-triggered function its own queue, nobody else."""
    spec = expected.spec
    handler_keys = {handler: key for key, handler in HANDLERS.items()}
    wanted = {
        handler_keys[f"app.{function}"]: [spec.queue_arn(APP_QUEUE_NAME_VARIABLES[variable])]
        for function, (variable, _) in expected.app.sqs_handlers.items()
    }
    return granted(state, spec, "sqs:ReceiveMessage"), wanted


def compare_queue_producers(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Who may send to which queue with IAM (services are admitted by queue policies, above)."""
    spec = expected.spec
    site_messages = spec.queue("site_messages")
    site_messages_dlq = f"arn:aws:sqs:{spec.region}:{spec.account_id}:{site_messages.dlq_name}"
    wanted = {
        "api": [spec.queue_arn("file_requests")],  # POST /readings/file
        "hes_export": [spec.queue_arn("export_jobs")],
        "lake_ingest": [spec.queue_arn("lake_jobs")],
        "input_adapter": [spec.queue_arn("lake_jobs")],
        "historian_backfill": sorted([spec.queue_arn("bridge_jobs"), spec.queue_arn("site_dispatch")]),
        # the IoT topic rules: what sites publish, failures to its DLQ
        "site-messages-iot": sorted([spec.queue_arn("site_messages"), site_messages_dlq]),
    }
    return granted(state, spec, "sqs:SendMessage"), wanted


def compare_workflow_starters(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """Who may start which state machine."""
    spec = expected.spec
    wanted = {
        "start_file_export": [spec.state_machine_arn("hes_export")],
        "start_file_ingest": [spec.state_machine_arn("lake_ingest")],
        "input_adapter_scheduler": [spec.state_machine_arn("input_adapter")],
        "api": [spec.state_machine_arn("historian_backfill")],  # POST /backfills
    }
    return granted(state, spec, "states:StartExecution"), wanted


def compare_outputs(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    """The root outputs the HES simulator guide, the lake and site provisioning document."""
    spec = expected.spec
    secret = state.one("aws_secretsmanager_secret").values
    wanted = {
        "apiGatewayInvokeURL": state.one("aws_api_gateway_stage").values["invoke_url"],
        "SecretARN": secret["arn"],
        "SecretName": spec.secret("sftp_private_key").name,
        "SftpServerAddress": state.one("aws_transfer_server").values["endpoint"],
        "SftpUserName": SFTP_USER,
        "InboundBucket": spec.bucket("inbound").name,
        "IntegratedBucket": spec.bucket("integrated").name,
        "GlueDatabase": spec.glue_database,
        "AthenaWorkgroup": spec.athena_workgroup,
        "AlertsTopicArn": spec.topic_arn("alerts"),
        "LakeIngestStateMachineArn": spec.state_machine_arn("lake_ingest"),
        "InputAdapterStateMachineArn": spec.state_machine_arn("input_adapter"),
        "BackfillStateMachineArn": spec.state_machine_arn("historian_backfill"),
        "IotDataEndpoint": iot_data_endpoint(state),
        "OnpremWorkerPolicyName": state.one("aws_iot_policy").values["name"],
        "OnpremWorkerThingType": state.one("aws_iot_thing_type").values["name"],
    }
    assert set(wanted) == SEED_OUTPUTS | LAKE_OUTPUTS | BRIDGE_OUTPUTS
    outputs = state.outputs()
    return {name: outputs.get(name) for name in wanted}, wanted


def compare_secrets(state: AppliedState, expected: Expected) -> tuple[Any, Any]:
    applied = {
        secret.values["name"]: secret.values["description"]
        for secret in state.resources("aws_secretsmanager_secret")
    }
    return applied, {secret.name: secret.description for secret in expected.spec.secrets}


Comparison = Callable[[AppliedState, Expected], tuple[Any, Any]]
COMPARISONS: dict[str, Comparison] = {
    "handlers": compare_handlers,
    "sqs_triggers": compare_sqs_triggers,
    "lambda_environment": compare_lambda_environment,
    "routes": compare_routes,
    "invoke_grants": compare_invoke_grants,
    "queue_senders": compare_queue_senders,
    "key_grants": compare_key_grants,
    "redrive_allow": compare_redrive_allow,
    "schedules": compare_schedules,
    "glue_catalog": compare_glue_tables,
    "site_rules": compare_site_rules,
    "worker_policy": compare_worker_policy,
    "iot_publishers": compare_iot_publishers,
    "queue_consumers": compare_queue_consumers,
    "queue_producers": compare_queue_producers,
    "workflow_starters": compare_workflow_starters,
    "outputs": compare_outputs,
    "secrets": compare_secrets,
}


@pytest.mark.parametrize("aspect", list(COMPARISONS))
def test_applied_configuration_is_what_the_code_expects(
    applied: AppliedState, expected: Expected, aspect: str
) -> None:
    # GIVEN the applied state and what the code says it must be
    # WHEN extracting the same facts from both
    applied_side, expected_side = COMPARISONS[aspect](applied, expected)
    # THEN there is something to compare, and the two are equal
    assert expected_side, f"nothing expected for {aspect}"
    assert applied_side, f"nothing applied for {aspect}"
    assert applied_side == expected_side


# ---------------------------------------------------------------------------------------------
# The comparisons fail when the applied state differs (one changed value of a copy each)
# ---------------------------------------------------------------------------------------------


def _edit(shown: dict[str, Any], address: str, change: Callable[[dict[str, Any]], None] | None) -> None:
    """Apply ``change`` to the values of the resource at ``address`` (None: remove the resource)."""

    def walk(module: dict[str, Any]) -> bool:
        for index, item in enumerate(module.get("resources", [])):
            if item["address"] == address:
                if change is None:
                    del module["resources"][index]
                else:
                    change(item["values"])
                return True
        return any(walk(child) for child in module.get("child_modules", []))

    assert walk(shown["values"]["root_module"]), f"no {address} in the applied state: update the mutation"


def _replace(attribute: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        assert old in values[attribute], f"{old!r} is not in {attribute}: update the mutation"
        values[attribute] = values[attribute].replace(old, new, 1)

    return change


def _set_env(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        values["environment"][0]["variables"][name] = value

    return change


def _rename_env(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        variables = values["environment"][0]["variables"]
        variables[new] = variables.pop(old)

    return change


def _setitem(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        target: Any = values
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _add_statement(statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        document = json.loads(values["policy"])
        document["Statement"] = [*as_list(document["Statement"]), statement]
        values["policy"] = json.dumps(document)

    return change


S = "acme-hes"  # the deployment's stack name, in the addresses' values below
MUTATIONS = [
    pytest.param(
        'module.functions.aws_lambda_function.this["export_worker"]',
        _setitem(("image_config", 0, "command"), ["app.run_lake_job"]),
        "handlers",
        id="handler",
    ),
    pytest.param(
        'module.functions.aws_lambda_function.this["lake_worker"]',
        _setitem(("tracing_config", 0, "mode"), "PassThrough"),
        "handlers",
        id="tracing",
    ),
    pytest.param(
        'module.functions.aws_lambda_event_source_mapping.this["export_worker"]',
        _setitem(("batch_size",), 10),
        "sqs_triggers",
        id="batch-size",
    ),
    pytest.param(
        'module.functions.aws_lambda_event_source_mapping.this["site_messages"]',
        _setitem(("function_response_types",), []),
        "sqs_triggers",
        id="batch-item-failures",
    ),
    pytest.param(
        'module.functions.aws_lambda_event_source_mapping.this["merge_late_reads"]',
        _replace("event_source_arn", f"{S}-late-reads", f"{S}-lake-jobs"),
        "sqs_triggers",
        id="trigger-queue",
    ),
    pytest.param(
        'module.functions.aws_lambda_function.this["api"]',
        _rename_env("MF_LAKE_GLUE_DATABASE", "MF_LAKE_GLUE_DB"),
        "lambda_environment",
        id="env-name",
    ),
    pytest.param(
        'module.functions.aws_lambda_function.this["lake_worker"]',
        _set_env(
            "MF_LAKE_JOBS_QUEUE_URL", f"https://sqs.eu-west-1.amazonaws.com/123456789012/{S}-late-reads"
        ),
        "lambda_environment",
        id="env-reference",
    ),
    pytest.param(
        'module.functions.aws_lambda_function.this["site_messages"]',
        _set_env("MF_HES_FLEET_SEED", "1"),
        "lambda_environment",
        id="env-default",
    ),
    pytest.param('module.api.aws_api_gateway_method.this["POST /backfills"]', None, "routes", id="route"),
    pytest.param(
        'module.api.aws_iam_role_policy.invoke["lake_worker"]',
        _replace("policy", "/prod/GET/readings/file", "/prod/GET/readings"),
        "invoke_grants",
        id="invoke-grant",
    ),
    pytest.param(
        'module.queues.aws_sqs_queue_policy.this["uncompressed_objects"]',
        _replace("policy", f"arn:aws:s3:::{S}-inbound-", f"arn:aws:s3:::{S}-integrated-"),
        "queue_senders",
        id="sender-bucket",
    ),
    pytest.param(
        'module.queues.aws_sqs_queue_policy.this["export_jobs"]',
        _add_statement(
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ),
        "queue_senders",
        id="extra-sender",
    ),
    pytest.param(
        "module.kms.aws_kms_key.this",
        _replace("policy", f"{S}-uncompressed-objects", f"{S}-late-reads"),
        "key_grants",
        id="key-grant",
    ),
    pytest.param(
        'module.queues.aws_sqs_queue_redrive_allow_policy.dlq["lake_jobs"]',
        _replace("redrive_allow_policy", f"{S}-lake-jobs", f"{S}-export-jobs"),
        "redrive_allow",
        id="redrive-allow",
    ),
    pytest.param(
        "module.events.aws_lambda_permission.scheduler",
        _replace("source_arn", "rule/", "rule/other-"),
        "schedules",
        id="schedule-permission",
    ),
    pytest.param(
        'module.catalog.aws_glue_catalog_table.this["readings"]',
        _setitem(("parameters", "projection.month.range"), "1,13"),
        "glue_catalog",
        id="projection-range",
    ),
    pytest.param(
        'module.catalog.aws_glue_catalog_table.this["weather"]',
        _setitem(("storage_descriptor", 0, "columns", 1, "type"), "float"),
        "glue_catalog",
        id="column-type",
    ),
    pytest.param(
        'module.iot.aws_iot_topic_rule.site_messages["results"]',
        _replace("sql", "topic() AS topic", "topic() AS name"),
        "site_rules",
        id="rule-sql",
    ),
    pytest.param(
        'module.iot.aws_iot_topic_rule.site_messages["progress"]',
        _setitem(("error_action", 0, "sqs", 0, "queue_url"), f"http://x/123456789012/{S}-site-messages"),
        "site_rules",
        id="rule-error-queue",
    ),
    pytest.param(
        "module.iot.aws_iot_policy.worker",
        _replace("policy", ":client/${iot:Connection.Thing.ThingName}", ":client/*"),
        "worker_policy",
        id="policy-client-id",
    ),
    pytest.param(
        "module.iot.aws_iot_policy.worker",
        _replace(
            "policy",
            "topicfilter/meterflow/${iot:Connection.Thing.Attributes[tenant]}/",
            "topicfilter/meterflow/+/",
        ),
        "worker_policy",
        id="policy-tenant",
    ),
    pytest.param(
        'module.functions.aws_iam_role_policy.this["site_messages"]',
        _add_statement(
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/*",
            }
        ),
        "iot_publishers",
        id="iot-publisher",
    ),
    pytest.param(
        'module.functions.aws_iam_role_policy.this["merge_late_reads"]',
        _replace("policy", f"{S}-late-reads", f"{S}-lake-jobs"),
        "queue_consumers",
        id="consumer-queue",
    ),
    pytest.param(
        'module.functions.aws_iam_role_policy.this["lake_worker"]',
        _add_statement({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}),
        "queue_producers",
        id="producer-wildcard",
    ),
    pytest.param(
        'module.workflows.aws_iam_role_policy.lake["historian_backfill"]',
        _replace("policy", f"{S}-site-dispatch", f"{S}-site-messages"),
        "queue_producers",
        id="producer-queue",
    ),
    pytest.param(
        'module.functions.aws_iam_role_policy.this["input_adapter_scheduler"]',
        _replace("policy", "stateMachine:acme-hes-input-adapter", "stateMachine:*"),
        "workflow_starters",
        id="starter-wildcard",
    ),
    pytest.param(
        "module.sftp.aws_secretsmanager_secret.private_key",
        _setitem(("description",), "the key"),
        "secrets",
        id="secret-description",
    ),
]


@pytest.mark.parametrize(("address", "change", "aspect"), MUTATIONS)
def test_comparison_notices_a_change(
    applied: AppliedState,
    expected: Expected,
    address: str,
    change: Callable[[dict[str, Any]], None] | None,
    aspect: str,
) -> None:
    # GIVEN a copy of the applied state with one value changed
    assert expected.deployment.stack_name == S
    shown = copy.deepcopy(dict(applied.raw))
    _edit(shown, address, change)
    # WHEN comparing the copy with what the code expects
    applied_side, expected_side = COMPARISONS[aspect](AppliedState(shown), expected)
    # THEN the comparison reports the difference
    assert applied_side != expected_side


def test_outputs_comparison_notices_a_missing_output(applied: AppliedState, expected: Expected) -> None:
    # GIVEN a copy of the applied state without one root output
    shown = copy.deepcopy(dict(applied.raw))
    del shown["values"]["outputs"]["SecretName"]
    # WHEN comparing its outputs  THEN the missing one is reported
    applied_side, expected_side = compare_outputs(AppliedState(shown), expected)
    assert applied_side["SecretName"] is None
    assert applied_side != expected_side


# ---------------------------------------------------------------------------------------------
# IAM: no wildcard beyond what IAM requires
# ---------------------------------------------------------------------------------------------


def test_roles_use_wildcards_only_where_iam_requires_them(applied: AppliedState) -> None:
    # GIVEN every inline policy of every role, and the managed policies attached
    policies = applied.resources("aws_iam_role_policy")
    assert len(policies) >= len(HANDLERS) + 4  # the functions, the workflows, IoT rules, SFTP
    attached = {item.values["policy_arn"] for item in applied.resources("aws_iam_role_policy_attachment")}
    # WHEN looking for wildcard actions, and for "*" resources
    problems = []
    for policy in policies:
        for statement in statements(policy.values["policy"]):
            if statement.effect != "Allow":
                continue
            wild_actions = [action for action in statement.actions if "*" in action]
            if wild_actions:
                problems.append(f"{policy.address} {statement.sid}: actions {wild_actions}")
            if "*" in statement.resources and not set(statement.actions) <= RESOURCELESS_ACTIONS:
                problems.append(f"{policy.address} {statement.sid}: {statement.actions} on *")
    # THEN actions are named one by one, "*" is only where IAM has no resource-level permission,
    # and no broad managed policy is attached
    assert problems == []
    assert attached <= MANAGED_POLICIES


# ---------------------------------------------------------------------------------------------
# Functions: what the Chalice app needs, timeouts against their queues
# ---------------------------------------------------------------------------------------------


def test_every_function_has_the_settings_the_app_checks_at_start(applied: AppliedState) -> None:
    # GIVEN every function's environment
    environments = {key: function_environment(function) for key, function in functions(applied).items()}
    assert set(environments) == set(HANDLERS)
    required = (*HesSettings.required_env(), *LakeSettings.required_env(), *BridgeSettings.required_env())
    assert len(required) >= 15
    for key, environment in environments.items():
        # WHEN the app's start-up check (chalice_app/app.py: check_settings) reads it
        # THEN every required variable is set, and every settings class loads
        assert [name for name in required if not environment.get(name)] == [], key
        check_settings(HesSettings.from_env, LakeSettings.from_env, BridgeSettings.from_env, env=environment)


def test_every_variable_the_app_reads_without_a_default_is_set(applied: AppliedState) -> None:
    # GIVEN what chalice_app/app.py reads at import time, and the queue names its decorators use
    app = chalice_app_facts()
    required = {name for name, has_default in app.environment_reads.items() if not has_default}
    decorator_variables = {variable for variable, _ in app.sqs_handlers.values()}
    decorator_variables |= set(app.scheduled_handlers.values())
    assert decorator_variables >= set(APP_QUEUE_NAME_VARIABLES), "app.py reads other queue-name variables"
    for key, function in functions(applied).items():
        environment = function_environment(function)
        # WHEN comparing them with the function's environment
        # THEN each is set (AWS_REGION: by the Lambda runtime)
        assert required - set(environment) - {"AWS_REGION"} == set(), key
        assert decorator_variables <= set(environment), key


def test_handlers_name_what_the_app_registers(applied: AppliedState) -> None:
    # GIVEN the handlers the app registers (its Blueprints' queue and schedule functions, and the API);
    # app.py exports each under its own name (tests/functional/test_every_handler_is_covered.py
    # imports the app and checks that every "app.<name>" resolves)
    handlers = chalice_app_facts().handlers
    # WHEN reading each function's image command "app.<name>"
    commands = {function.values["image_config"][0]["command"][0] for function in functions(applied).values()}
    # THEN the functions run exactly the registered handlers, one each
    assert len(commands) == len(functions(applied)) == len(HANDLERS)
    assert commands == handlers


def _timeouts_and_visibility(state: AppliedState) -> tuple[dict[str, int], dict[str, int]]:
    timeouts = {key: function.values["timeout"] for key, function in functions(state).items()}
    visibility = {
        queue.values["name"]: queue.values["visibility_timeout_seconds"]
        for queue in state.resources("aws_sqs_queue")
    }
    return timeouts, visibility


def test_sqs_triggered_functions_finish_within_the_visibility_timeout(applied: AppliedState) -> None:
    # GIVEN each SQS event source mapping, its function and its queue
    timeouts, _ = _timeouts_and_visibility(applied)
    queues = queues_by_arn(applied)
    by_arn = {function.values["arn"]: key for key, function in functions(applied).items()}
    mappings = applied.resources("aws_lambda_event_source_mapping")
    assert len(mappings) == len(chalice_app_facts().sqs_handlers)
    for mapping in mappings:
        function = by_arn[mapping.values["function_name"]]
        queue = queues[mapping.values["event_source_arn"]].values
        # WHEN comparing the function's timeout with the queue's visibility timeout
        # THEN a message is not handed to a second invocation while the first may still run
        assert timeouts[function] <= queue["visibility_timeout_seconds"], (function, queue["name"])


def test_export_jobs_visibility_outlasts_the_worker(applied: AppliedState, deployment: Deployment) -> None:
    # GIVEN the export-jobs queue and the export worker
    timeouts, visibility = _timeouts_and_visibility(applied)
    queue = deployment.spec().queue("export_jobs").name
    # WHEN comparing the queue's visibility timeout with the worker's timeout
    # THEN the worker may run for a chunk, and a message stays invisible meanwhile (chunk + 60 s)
    assert timeouts["export_worker"] == deployment.tuning.chunk_timeout_seconds
    assert visibility[queue] == timeouts["export_worker"] + 60


def test_lake_jobs_visibility_outlasts_the_lake_worker(applied: AppliedState, deployment: Deployment) -> None:
    # GIVEN the lake-jobs queue and the lake worker
    timeouts, visibility = _timeouts_and_visibility(applied)
    lake = deployment.lake
    queue = deployment.spec().queue("lake_jobs").name
    # WHEN comparing the queue's visibility timeout with the worker's timeout
    # THEN the worker may run for the longest lake job, and a message stays invisible meanwhile
    assert timeouts["lake_worker"] == max(
        lake.stage_timeout_seconds, lake.compact_timeout_seconds, lake.transfer_timeout_seconds
    )
    assert visibility[queue] == timeouts["lake_worker"] + 60 == lake.lake_jobs_visibility_seconds


def test_site_dispatch_visibility_outlasts_the_dispatcher(
    applied: AppliedState, deployment: Deployment
) -> None:
    # GIVEN the site-dispatch queue and its consumer
    timeouts, visibility = _timeouts_and_visibility(applied)
    queue = deployment.spec().queue("site_dispatch").name
    # WHEN comparing the queue's visibility timeout with BridgeTuning and the dispatcher's timeout
    # THEN publishing (not the site's work, which the Task waits for) is what the queue outlasts
    assert visibility[queue] == deployment.bridge.site_dispatch_visibility_seconds
    assert timeouts["site_dispatcher"] < visibility[queue]


def test_scheduler_is_not_retried(applied: AppliedState) -> None:
    # GIVEN the asynchronous invoke configurations
    configs = applied.resources("aws_lambda_function_event_invoke_config")
    scheduler = functions(applied)["input_adapter_scheduler"].values["function_name"]
    # WHEN reading their retries
    retries = {config.values["function_name"]: config.values["maximum_retry_attempts"] for config in configs}
    # THEN a failed scheduler tick is left to the next one
    assert retries == {scheduler: 0}


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


def test_api_methods_require_iam_and_proxy_to_the_api_function(applied: AppliedState) -> None:
    # GIVEN the API's methods, integrations and Lambda permissions
    routes = api_routes_by_method(applied)
    methods = applied.resources("aws_api_gateway_method")
    integrations = applied.resources("aws_api_gateway_integration")
    api_function = functions(applied)["api"].values
    execution_arn = applied.one("aws_api_gateway_rest_api").values["execution_arn"]
    assert len(methods) == len(EXPECTED_ROUTES)
    # WHEN reading their authorization, integration and who may invoke the function
    # THEN every route is SigV4-authenticated ...
    assert {method.values["authorization"] for method in methods} == {"AWS_IAM"}
    # ... proxied to the API function ...
    assert sorted(
        routes[(item.values["resource_id"], item.values["http_method"])] for item in integrations
    ) == sorted(routes.values())
    for integration in integrations:
        values = integration.values
        assert (values["type"], values["integration_http_method"]) == ("AWS_PROXY", "POST"), (
            integration.address
        )
        assert values["uri"] == api_function["invoke_arn"], integration.address
    # ... and API Gateway may invoke the function for exactly these routes
    admitted = sorted(
        permission.values["source_arn"]
        for permission in applied.resources("aws_lambda_permission")
        if permission.values["principal"] == "apigateway.amazonaws.com"
    )
    for permission in applied.resources("aws_lambda_permission", module="module.api"):
        assert permission.values["function_name"] == api_function["function_name"]
        assert permission.values["action"] == "lambda:InvokeFunction"
    assert admitted == sorted(
        f"{execution_arn}/*/{method}{re.sub(r'{[^}]+}', '*', path)}"
        for method, path in (route.split(" ", 1) for route in EXPECTED_ROUTES)
    )


# ---------------------------------------------------------------------------------------------
# IoT Core: the topic rules' role, the envelope they produce, the workers' policy size
# ---------------------------------------------------------------------------------------------


def test_site_rules_role_only_sends_to_the_site_messages_queues(
    applied: AppliedState, deployment: Deployment
) -> None:
    spec = deployment.spec()
    # GIVEN the role every topic rule acts with
    rules = applied.resources("aws_iot_topic_rule")
    role_arns = {
        action["role_arn"]
        for rule in rules
        for action in (*rule.values["sqs"], *rule.values["error_action"][0]["sqs"])
    }
    (role_arn,) = role_arns
    (role,) = [role for role in applied.resources("aws_iam_role") if role.values["arn"] == role_arn]
    policies = [
        policy
        for policy in applied.resources("aws_iam_role_policy")
        if policy.values["role"] == role.values["name"]
    ]
    (policy,) = policies
    # WHEN reading what it may do
    found = statements(policy.values["policy"])
    sends = [statement for statement in found if statement.actions == ("sqs:SendMessage",)]
    others = [statement for statement in found if statement not in sends]
    # THEN it may send to the site-messages queue and its DLQ, and use the stack key through SQS only
    (send,) = sends
    queue = spec.queue("site_messages")
    assert sorted(arn.rsplit(":", 1)[-1] for arn in send.resources) == sorted([queue.name, queue.dlq_name])
    (encrypt,) = others
    assert encrypt.actions == ("kms:Decrypt", "kms:GenerateDataKey")
    assert encrypt.resources == (applied.one("aws_kms_key").values["arn"],)
    assert encrypt.condition("StringEquals", "kms:ViaService") == (f"sqs.{spec.region}.amazonaws.com",)
    # ... and only the stack's rules may assume it
    (assume,) = statements(role.values["assume_role_policy"])
    assert assume.principals == (("Service", "iot.amazonaws.com"),)
    assert sorted(assume.condition("ArnLike", "aws:SourceArn")) == sorted(
        rule.values["arn"] for rule in rules
    )
    assert assume.condition("StringEquals", "aws:SourceAccount") == (deployment.account_id,)


def test_site_rule_envelope_is_what_the_handler_reads(applied: AppliedState) -> None:
    rules = applied.resources("aws_iot_topic_rule")
    assert len(rules) == len(SITE_TO_CLOUD)
    for rule in rules:
        # GIVEN a topic rule's SELECT clause
        select = re.fullmatch(r"SELECT (?P<columns>.+) FROM '(?P<topic>[^']+)'", rule.values["sql"])
        assert select is not None, rule.values["sql"]
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


def test_worker_policy_fits_iot_core_s_size_limit(applied: AppliedState, deployment: Deployment) -> None:
    # GIVEN the applied workers' policy, for the longest stack name and a long region name (the
    # names are the only parts of the document that vary between deployments)
    document = applied.one("aws_iot_policy").values["policy"]
    assert deployment.stack_name in document and f":{deployment.region}:" in document
    longest = document.replace(deployment.stack_name, LONGEST_STACK_NAME).replace(
        f":{deployment.region}:", f":{LONG_REGION}:"
    )
    # WHEN measuring it without whitespace (how IoT Core counts)
    size = len(json.dumps(json.loads(longest), separators=(",", ":")))
    # THEN IoT Core accepts it
    assert size <= IOT_POLICY_MAX_CHARACTERS


# ---------------------------------------------------------------------------------------------
# The key, the catalog's workgroup
# ---------------------------------------------------------------------------------------------


def test_key_policy_admits_every_encrypted_log_group(applied: AppliedState, deployment: Deployment) -> None:
    # GIVEN the stack key's policy and the log groups encrypted with it
    key = applied.one("aws_kms_key").values
    log_groups = [
        group.values["name"]
        for group in applied.resources("aws_cloudwatch_log_group")
        if group.values["kms_key_id"]
    ]
    assert len(log_groups) >= len(HANDLERS)
    assert {group.values["kms_key_id"] for group in applied.resources("aws_cloudwatch_log_group")} == {
        key["arn"]
    }
    logs: list[Statement] = [
        statement
        for statement in statements(key["policy"])
        if ("Service", f"logs.{deployment.region}.amazonaws.com") in statement.principals
    ]
    (statement,) = logs
    patterns = statement.condition("ArnLike", "kms:EncryptionContext:aws:logs:arn")
    # WHEN matching each log group's ARN against the statement's encryption-context patterns
    prefix = f"arn:aws:logs:{deployment.region}:{deployment.account_id}:log-group:"
    unadmitted = [
        name
        for name in log_groups
        if not any(fnmatch.fnmatchcase(prefix + name, pattern) for pattern in patterns)
    ]
    # THEN CloudWatch Logs may use the key for every one of them (and for nothing outside the stack)
    assert unadmitted == []
    assert all(pattern.startswith(prefix) and deployment.stack_name in pattern for pattern in patterns)


def test_athena_workgroup_enforces_encrypted_results(applied: AppliedState, deployment: Deployment) -> None:
    spec = deployment.spec()
    # GIVEN the lake's workgroup
    workgroup = applied.one("aws_athena_workgroup").values
    (configuration,) = workgroup["configuration"]
    (results,) = configuration["result_configuration"]
    (encryption,) = results["encryption_configuration"]
    # WHEN reading its configuration
    # THEN it is the workgroup the functions use, clients cannot override it, results land in the
    # results bucket, encrypted with the stack key, and every query has a scan limit
    assert workgroup["name"] == spec.athena_workgroup
    assert workgroup["state"] == "ENABLED"
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["publish_cloudwatch_metrics_enabled"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] >= 10 * 1024 * 1024
    assert results["output_location"].startswith(f"s3://{spec.bucket('athena_results').name}/")
    assert (encryption["encryption_option"], encryption["kms_key_arn"]) == (
        "SSE_KMS",
        applied.one("aws_kms_key").values["arn"],
    )
