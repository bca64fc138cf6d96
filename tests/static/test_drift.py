"""terraform/ declares exactly the resources of meterflow/stack.py (and the Chalice app's routes).

Each comparison extracts the same facts from both sides (Terraform through tests/static/tfmodel.py,
the stack through ``stack_spec()``) and the tests assert they are equal, for the default variables
and for a deployment with another stack name, account, region and tuning. The mutation tests at the
end change a copy of the Terraform and check that each comparison then fails, so a green run means
agreement, not blindness.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from meterflow.settings import Settings
from meterflow.stack import STATE_MACHINE_DIR, ExportTuning, StackSpec, stack_spec, template_variables
from tests.static.support import REPO_ROOT, ModelFactory
from tests.static.tfmodel import ResourceInstance, TemplateFile, TerraformModel, Unknown

# The seed-000 API (design.md section 3); chalice_app/app.py must serve exactly these.
EXPECTED_ROUTES = frozenset({"GET /readings", "GET /readings/file", "POST /readings/file"})
SEED_OUTPUTS = frozenset(
    {"apiGatewayInvokeURL", "SecretARN", "SecretName", "SftpServerAddress", "SftpUserName"}
)
CHALICE_APP = REPO_ROOT / "chalice_app" / "app.py"
# Variables chalice_app/app.py reads at import time for its @app.on_sqs_message decorators.
APP_QUEUE_NAME_VARIABLES = {
    "MF_FILE_REQUESTS_QUEUE_NAME": "file_requests",
    "MF_EXPORT_JOBS_QUEUE_NAME": "export_jobs",
}
HANDLERS = {
    "api": "app.app",
    "start_file_export": "app.start_file_export",
    "export_worker": "app.run_export_job",
}
QUEUE_URL_OUTPUT = re.compile(r'^module\.\w+\.queue_urls\["(?P<key>\w+)"\]$')
STATE_MACHINE_ARN_OUTPUT = re.compile(r"^module\.\w+\.state_machine_arn$")
NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Deployment:
    name: str
    stack_name: str
    account_id: str
    region: str
    tuning: ExportTuning
    use_defaults: bool  # True: pass no Terraform variables at all


DEPLOYMENTS = (
    Deployment("defaults", "meterflow", "123456789012", "us-east-1", ExportTuning(), use_defaults=True),
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
        use_defaults=False,
    ),
)


def model_for(model_factory: ModelFactory, terraform_dir: Path, deployment: Deployment) -> TerraformModel:
    # ExportTuning's fields are the Terraform variables of the same names (meterflow/stack.py).
    variables = (
        {}
        if deployment.use_defaults
        else {"stack_name": deployment.stack_name, "region": deployment.region, **asdict(deployment.tuning)}
    )
    return model_factory(terraform_dir, variables, account_id=deployment.account_id, region=deployment.region)


def spec_for(deployment: Deployment) -> StackSpec:
    return stack_spec(deployment.stack_name, deployment.region, deployment.account_id, deployment.tuning)


@pytest.fixture(params=DEPLOYMENTS, ids=lambda deployment: deployment.name)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def spec(deployment: Deployment) -> StackSpec:
    return spec_for(deployment)


@pytest.fixture
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


def _placeholder(value: Any) -> Any:
    """Values known only after apply, as a comparable marker naming what they stand for."""
    if not isinstance(value, Unknown):
        return value
    queue_url = QUEUE_URL_OUTPUT.match(value.ref)
    if queue_url:
        return f"<url of queue {queue_url.group('key')}>"
    if STATE_MACHINE_ARN_OUTPUT.match(value.ref):
        return "<state machine arn>"
    return f"<unknown {value.ref}>"


def _spec_placeholder(spec: StackSpec, value: Any) -> Any:
    for queue in spec.queues:
        if value == spec.queue_url(queue.key):
            return f"<url of queue {queue.key}>"
    if any(value == spec.state_machine_arn(machine.key) for machine in spec.state_machines):
        return "<state machine arn>"
    return value


def terraform_state_machines(model: TerraformModel) -> dict[str, StateMachineFacts]:
    facts = {}
    for machine in model.resources("aws_sfn_state_machine"):
        definition = machine.attr("definition")
        assert isinstance(definition, TemplateFile), f"{machine.address}: definition is not a templatefile()"
        path = Path(definition.path).resolve().relative_to(model.root_directory.parent)
        template_vars = tuple(
            sorted((key, _placeholder(value)) for key, value in definition.variables.items())
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
            {key: _env_value(_placeholder(value)) for key, value in environment["variables"].items()}
        )
    assert environments, "no Lambda functions"
    assert all(environment == environments[0] for environment in environments), (
        "functions differ in environment"
    )
    return environments[0]


def spec_lambda_environment(spec: StackSpec) -> dict[str, Any]:
    settings = Settings.from_env(
        {
            "MF_STACK_NAME": spec.stack_name,
            "AWS_REGION": spec.region,
            "MF_FILE_REQUESTS_TABLE": spec.table("file_requests").name,
            "MF_FILE_REQUESTS_QUEUE_URL": spec.queue_url("file_requests"),
            "MF_EXPORT_JOBS_QUEUE_URL": spec.queue_url("export_jobs"),
            "MF_EXPORTS_BUCKET": spec.bucket("hes_exports").name,
            "MF_EXPORT_STATE_MACHINE_ARN": spec.state_machine_arn("hes_export"),
        }
    )
    # AWS_REGION is reserved in Lambda: the runtime sets it, a function may not.
    environment = {
        key: _env_value(_spec_placeholder(spec, value))
        for key, value in settings.to_env().items()
        if key != "AWS_REGION"
    }
    environment.update({variable: spec.queue(key).name for variable, key in APP_QUEUE_NAME_VARIABLES.items()})
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
    del spec  # the routes are the seed-000 contract, not part of the stack spec
    return set(EXPECTED_ROUTES)


Comparison = Callable[[TerraformModel, StackSpec], tuple[Any, Any]]
COMPARISONS: dict[str, Comparison] = {
    "buckets": lambda model, spec: (terraform_buckets(model), spec_buckets(spec)),
    "queues": lambda model, spec: (terraform_queues(model), spec_queues(spec)),
    "tables": lambda model, spec: (terraform_tables(model), spec_tables(spec)),
    "secrets": lambda model, spec: (terraform_secrets(model), spec_secrets(spec)),
    "state_machines": lambda model, spec: (terraform_state_machines(model), spec_state_machines(spec)),
    "lambda_environment": lambda model, spec: (
        terraform_lambda_environment(model),
        spec_lambda_environment(spec),
    ),
    "routes": lambda model, spec: (terraform_routes(model), spec_routes(spec)),
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
    assert settings == {"start_file_export": expected, "export_worker": expected}


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
        "max_receive_count          = 5",
        "max_receive_count          = 4",
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
    pytest.param("locals.tf", 'ttl_attribute = "expires_at"', 'ttl_attribute = "expiry"', "tables", id="ttl"),
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
