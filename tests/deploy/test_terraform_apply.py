"""``terraform apply`` of terraform/ against moto: it applies, it is the stack the local runtime
builds, a second plan changes nothing, the stack is watched by alarms, and destroy leaves nothing.

The tests run in file order; the last one destroys the stack.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from meterflow.localcloud.stack import StackSpec
from tests.deploy.applied_state import chalice_app_facts
from tests.deploy.conftest import AppliedStack, Deployment, terraform_for_moto
from tests.deploy.stack_facts import StackReader, differences
from tests.support.moto_process import MotoProcess, moto_process
from tests.support.terraform import Terraform, managed_resources, moto_provider_override

pytestmark = pytest.mark.deploy

ASPECTS = (
    "queues",
    "tables",
    "buckets",
    "notifications",
    "event_rules",
    "state_machines",
    "secrets",
    "topics",
)


@pytest.fixture(scope="module")
def applied_aspects(applied_stack: AppliedStack) -> dict[str, Any]:
    return StackReader(applied_stack.cloud.clients(), applied_stack.deployment.stack_name).aspects()


@pytest.fixture(scope="module")
def local_aspects(local_runtime_cloud: MotoProcess, deployment: Deployment) -> dict[str, Any]:
    return StackReader(local_runtime_cloud.clients(), deployment.stack_name).aspects()


def test_every_planned_resource_is_applied(applied_stack: AppliedStack) -> None:
    # THEN apply reports every resource of the plan as added, and the state holds them all
    added = re.search(
        r"Apply complete! Resources: (\d+) added, (\d+) changed, (\d+) destroyed", applied_stack.apply_output
    )
    assert added is not None, applied_stack.apply_output[-3000:]
    assert int(added.group(1)) == applied_stack.planned_resources
    assert len(managed_resources(applied_stack.state())) == applied_stack.planned_resources
    print(f"\nterraform apply against moto: {applied_stack.planned_resources} resources planned and applied")


@pytest.mark.parametrize("aspect", ASPECTS)
def test_applied_stack_is_the_stack_the_local_runtime_builds(
    applied_aspects: dict[str, Any], local_aspects: dict[str, Any], aspect: str
) -> None:
    # THEN what the cloud holds after terraform apply is what it holds after the local bootstrap
    assert local_aspects[aspect], f"the local runtime creates no {aspect}: nothing compared"
    assert differences(local_aspects[aspect], applied_aspects[aspect]) == []


def test_schedules_match_the_stack_definition(applied_stack: AppliedStack, deployment: Deployment) -> None:
    # The local runtime's scheduler is a thread, not a rule: compare with the stack definition.
    spec = deployment.spec()
    applied = StackReader(applied_stack.cloud.clients(), deployment.stack_name).schedules()
    assert applied == {schedule.name: schedule.schedule_expression for schedule in spec.schedules}


def test_functions_run_the_handlers_of_one_image(applied_stack: AppliedStack) -> None:
    lambda_client = applied_stack.cloud.client("lambda")
    functions = [
        function
        for function in lambda_client.list_functions()["Functions"]
        if function["FunctionName"].startswith(f"{applied_stack.deployment.stack_name}-")
    ]
    # one function per handler the app registers (its Blueprints' queues and schedules) and the API
    assert len(functions) == len(chalice_app_facts().handlers) == 10
    images = set()
    for function in functions:
        configuration = lambda_client.get_function(FunctionName=function["FunctionName"])
        assert configuration["Configuration"]["PackageType"] == "Image"
        images.add(configuration["Code"]["ImageUri"])
        command = configuration["Configuration"]["ImageConfigResponse"]["ImageConfig"]["Command"]
        assert len(command) == 1 and command[0].startswith("app.")
    assert images == {applied_stack.deployment.variables()["lambda_image_uri"]}


def _alarm_dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {dimension["Name"]: dimension["Value"] for dimension in alarm.get("Dimensions", [])}


def test_alarms_watch_every_dlq_state_machine_and_function(
    applied_stack: AppliedStack, deployment: Deployment
) -> None:
    spec: StackSpec = deployment.spec()
    cloudwatch = applied_stack.cloud.client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{deployment.stack_name}-")["MetricAlarms"]
    topic = f"arn:aws:sns:{deployment.region}:{deployment.account_id}:{spec.topic('alerts').name}"
    assert alarms, "no alarms"
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms)
    watched = {
        (alarm["Namespace"], alarm["MetricName"], *sorted(_alarm_dimensions(alarm).values()))
        for alarm in alarms
    }
    # every DLQ: a message there is data the stack could not process
    for queue in spec.queues:
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue.dlq_name) in watched
    # every state machine: failed, timed out and aborted executions
    for machine in spec.state_machines:
        arn = f"arn:aws:states:{deployment.region}:{deployment.account_id}:stateMachine:{machine.name}"
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
            assert ("AWS/States", metric, arn) in watched, (metric, machine.name)
    # every function: errors and throttles
    functions = [
        function["FunctionName"]
        for function in applied_stack.cloud.client("lambda").list_functions()["Functions"]
        if function["FunctionName"].startswith(f"{deployment.stack_name}-")
    ]
    for function in functions:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, function) in watched, (metric, function)


def test_sftp_key_pair_is_installed_outside_terraform(
    applied_stack: AppliedStack, deployment: Deployment
) -> None:
    from meterflow.localcloud.sftp_keys import rotate_sftp_key

    # GIVEN the applied stack: the secret exists, without a value, and the user has no key
    state = json.dumps(applied_stack.state())
    assert "PRIVATE KEY" not in state
    secretsmanager = applied_stack.cloud.client("secretsmanager")
    transfer = applied_stack.cloud.client("transfer")
    secret_name = deployment.spec().secret("sftp_private_key").name
    # WHEN the operator rotates the key (twice: the second replaces the first)
    first = rotate_sftp_key(secretsmanager, transfer, deployment.stack_name)
    second = rotate_sftp_key(secretsmanager, transfer, deployment.stack_name)
    # THEN the secret holds the newest private key and the user only its public key
    private = secretsmanager.get_secret_value(SecretId=secret_name)["SecretString"]
    assert "PRIVATE KEY" in private and private != first.private_pem
    user = transfer.describe_user(ServerId=second.server_id, UserName=second.user_name)["User"]
    assert [key["SshPublicKeyBody"] for key in user["SshPublicKeys"]] == [second.public_openssh]
    # AND Terraform's state still holds no private key
    assert "PRIVATE KEY" not in json.dumps(applied_stack.state())


def test_registry_comes_first_without_an_image(
    applied_stack: AppliedStack, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """README "Deploy to AWS" step 1: the repository is applied before any image exists."""
    # GIVEN the configuration without lambda_image_uri
    terraform = Terraform.copy_of(tmp_path_factory.mktemp("first-deploy"))
    terraform.write(
        "moto_override.tf", moto_provider_override(applied_stack.cloud.endpoint_url, deployment.region)
    )
    terraform.set_variables({**deployment.variables(), "lambda_image_uri": None})
    terraform.init()
    # WHEN only the registry is planned THEN it plans
    terraform.run("plan", "-input=false", "-no-color", "-refresh=false", "-target=module.registry")
    # AND the whole stack is refused until the image exists, saying what to set
    refused = terraform.run("plan", "-input=false", "-no-color", "-refresh=false", check=False)
    assert refused.returncode == 1
    assert "lambda_image_uri must be an ECR image URI pinned by digest" in " ".join(refused.stderr.split())


def test_second_plan_shows_no_changes(applied_stack: AppliedStack) -> None:
    # WHEN terraform plans again against what it applied (and what rotate-key changed)
    exit_code, plan = applied_stack.terraform.plan_changes()
    # THEN there is nothing to do
    changes = [line for line in plan.splitlines() if re.match(r"\s+# .* (will|must) be", line)]
    assert exit_code == 0, "\n".join(changes) or plan[-3000:]


def leftovers(cloud: MotoProcess, stack_name: str) -> dict[str, list[str]]:
    """What the cloud still holds of a stack, beyond the aspects the local runtime also creates."""
    glue_name = stack_name.replace("-", "_")
    iot = cloud.client("iot")
    found = {
        "functions": [f["FunctionName"] for f in cloud.client("lambda").list_functions()["Functions"]],
        "event source mappings": [
            m["UUID"] for m in cloud.client("lambda").list_event_source_mappings()["EventSourceMappings"]
        ],
        "roles": [role["RoleName"] for role in cloud.client("iam").list_roles()["Roles"]],
        "log groups": [
            group["logGroupName"] for group in cloud.client("logs").describe_log_groups()["logGroups"]
        ],
        "alarms": [
            alarm["AlarmName"] for alarm in cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]
        ],
        "repositories": [
            repo["repositoryName"] for repo in cloud.client("ecr").describe_repositories()["repositories"]
        ],
        "glue databases": [
            database["Name"] for database in cloud.client("glue").get_databases()["DatabaseList"]
        ],
        "athena workgroups": [
            group["Name"] for group in cloud.client("athena").list_work_groups()["WorkGroups"]
        ],
        "sftp servers": [server["ServerId"] for server in cloud.client("transfer").list_servers()["Servers"]],
        "rest apis": [api["name"] for api in cloud.client("apigateway").get_rest_apis()["items"]],
        "iot": [policy["policyName"] for policy in iot.list_policies()["policies"]]
        + [rule["ruleName"] for rule in iot.list_topic_rules()["rules"]]
        + [thing_type["thingTypeName"] for thing_type in iot.list_thing_types()["thingTypes"]],
        "event rules": [rule["Name"] for rule in cloud.client("events").list_rules()["Rules"]],
        "kms aliases": [alias["AliasName"] for alias in cloud.client("kms").list_aliases()["Aliases"]],
    }
    ours = (
        stack_name,
        glue_name,
        f"/aws/lambda/{stack_name}",
        f"/aws/vendedlogs/states/{stack_name}",
        f"/aws/apigateway/{stack_name}",
        f"/aws/transfer/{stack_name}",
        f"alias/{stack_name}",
    )
    return {
        kind: names
        for kind, items in found.items()
        if (
            names := [
                name
                for name in items
                if kind in {"sftp servers", "event source mappings"} or name.startswith(ours)
            ]
        )
    }


def test_destroy_leaves_nothing(applied_stack: AppliedStack, deployment: Deployment) -> None:
    # GIVEN the applied stack holds resources of every kind checked below
    before = leftovers(applied_stack.cloud, deployment.stack_name)
    assert set(before) >= {
        "functions",
        "roles",
        "log groups",
        "alarms",
        "repositories",
        "sftp servers",
        "iot",
    }
    # WHEN the stack is destroyed
    applied_stack.terraform.destroy()
    # THEN the state is empty and the cloud holds nothing of the stack
    assert managed_resources(applied_stack.state()) == []
    remaining = {
        aspect: facts
        for aspect, facts in StackReader(applied_stack.cloud.clients(), deployment.stack_name)
        .aspects()
        .items()
        if facts
    }
    assert remaining == {}
    assert leftovers(applied_stack.cloud, deployment.stack_name) == {}
    # AND the stack's key is scheduled for deletion (KMS keys are never deleted at once)
    kms = applied_stack.cloud.client("kms")
    states = {
        kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] for key in kms.list_keys()["Keys"]
    }
    assert "PendingDeletion" in states


def test_comparison_fails_when_terraform_drifts(
    tmp_path_factory: pytest.TempPathFactory, deployment: Deployment, local_aspects: dict[str, Any]
) -> None:
    """A Terraform that disagrees with the local runtime (one DLQ receive count) is caught."""
    with moto_process(deployment.region) as cloud:
        # GIVEN a copy of the Terraform whose late-reads queue gives up after 4 receives, not 5
        terraform = terraform_for_moto(tmp_path_factory.mktemp("drift"), cloud, deployment)
        locals_tf = terraform.module_dir / "locals.tf"
        text = locals_tf.read_text()
        original = (
            "      name                       = local.names.queues.late_reads\n"
            "      visibility_timeout_seconds = 300\n"
            "      max_receive_count          = 5\n"
        )
        assert original in text, "the mutation no longer applies: update it"
        locals_tf.write_text(
            text.replace(original, original.replace("count          = 5", "count          = 4"))
        )
        # WHEN only the queues are applied
        terraform.apply(targets=["module.queues"])
        applied = StackReader(cloud.clients(), deployment.stack_name).queues()
    # THEN the comparison names the queue and the count
    late_reads = deployment.spec().queue("late_reads").name
    assert differences(local_aspects["queues"], applied) == [
        f"/{late_reads}: expected {local_aspects['queues'][late_reads]!r}, got {applied[late_reads]!r}"
    ]
