"""The functional tier: every route and event handler of the Chalice app, called in-process.

One moto (``mock_aws``, in this process) for this package holds the stack, created by the local
runtime's own bootstrap; the app reads the environment the local runtime computes for it
(:mod:`tests.support.inprocess_stack`). moto runs the state machines, so the handlers answer real
task tokens. Each test gets fresh wiring (the ``*_services()`` caches are cleared before and after
it); after it, its workflows are stopped and the queues emptied. Tests make their own ids, so what
earlier tests left in tables and buckets does not matter.

Handlers are called by the names the app registers them under (``app.handler_map``), with the
events AWS delivers: ``invoke.sqs("run_export_job", body)``, ``invoke.schedule(...)``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator

import botocore.loaders
import botocore.session
import pytest
from chalice.app import Chalice
from chalice.test import Client
from moto import mock_aws

from meterflow.bridge.wiring import bridge_services
from meterflow.hes.domain.fleet import FleetConfig
from meterflow.hes.wiring import hes_services
from meterflow.lake.wiring import lake_services
from meterflow.localcloud.local_cloud import LocalCloudConfig
from tests.support.backfills import JSON, Backfill, backfill_request
from tests.support.inprocess_stack import MOTO_CONFIG, InProcessStack, Invoke, start_stack

REGION = "us-east-1"
# The runtime's settings for a small simulated fleet: every test builds it afresh with its wiring.
FLEET = FleetConfig(meter_count=500)
# Whatever a developer's shell or an earlier test left set must not reach a real or another cloud.
_AWS_LEFTOVERS = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "functional-tests",
    "AWS_SECRET_ACCESS_KEY": "functional-tests",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_XRAY_SDK_ENABLED": "false",
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessStack]:
    """The stack in moto, and this process's environment set as the local runtime sets its API's."""
    with pytest.MonkeyPatch.context() as env:
        for name in _AWS_LEFTOVERS:
            env.delenv(name, raising=False)
        for name, value in _FAKE_AWS.items():
            env.setenv(name, value)
        # Every test builds its wiring afresh, dozens of boto3 clients each: one loader for all the
        # sessions reads botocore's service definitions once instead of once per session (4x faster).
        env.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
        with mock_aws(config=MOTO_CONFIG):
            state_dir = tmp_path_factory.mktemp("functional-state")
            created = start_stack(LocalCloudConfig(region=REGION, state_dir=state_dir, fleet=FLEET))
            for name, value in created.environment.items():
                env.setenv(name, value)
            try:
                yield created
            finally:
                created.stop_running_executions()


@pytest.fixture(scope="package")
def app(stack: InProcessStack) -> Chalice:
    """The app, imported once its settings are in the environment (it checks them at import)."""
    return importlib.import_module("chalice_app.app").app  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def _session_client(app: Chalice, tmp_path_factory: pytest.TempPathFactory) -> Client:
    # a project directory without .chalice/config.json: no stage variables over the environment
    return Client(app, project_dir=str(tmp_path_factory.mktemp("chalice-project")))


def _clear_wiring() -> None:
    for services in (hes_services, lake_services, bridge_services):
        services.cache_clear()


@pytest.fixture
def client(_session_client: Client, stack: InProcessStack) -> Iterator[Client]:
    """The Chalice test client, with wiring built afresh for this test and its workflows ended after it."""
    _clear_wiring()
    yield _session_client
    _clear_wiring()
    stack.stop_running_executions()
    for queue in stack.spec.queues:
        stack.drain(queue.key)


@pytest.fixture
def invoke(client: Client, stack: InProcessStack) -> Invoke:
    return Invoke(client, stack)


# ------------------------------------------------------------------------------------------ bridge
@pytest.fixture
def backfill(client: Client, stack: InProcessStack) -> Backfill:
    """A backfill accepted by the API: its job queued, its workflow waiting for the upload to be prepared."""
    response = client.http.post("/backfills", headers=JSON, body=backfill_request())
    assert response.status_code == 202, response.body
    job_id = response.json_body["job_id"]
    prepare = stack.next_message("bridge_jobs", lambda body: body["payload"].get("job_id") == job_id)
    return Backfill(job_id, stack.execution_arn("historian_backfill", job_id), prepare)
