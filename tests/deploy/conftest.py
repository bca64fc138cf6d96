"""One ``terraform apply`` of the whole stack against a moto server of its own, per session.

The deployment is not the default one: another stack name, region and tuning, so that a value
wired to the wrong variable (or a default standing in for a variable) shows up as a difference.
The variables' defaults are compared with the Python defaults by ``test_terraform_defaults``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning, StackSpec, stack_spec
from tests.support.moto_process import MotoProcess, moto_process
from tests.support.terraform import Terraform, moto_provider_override, terraform_binary, tuning_variables

# A syntactically valid image pinned by digest; moto (like AWS for a missing image, which is why
# `make image` runs first) does not pull it.
IMAGE_DIGEST = "sha256:" + "ab" * 32


@dataclass(frozen=True)
class Deployment:
    stack_name: str
    region: str
    account_id: str
    tuning: ExportTuning
    lake: LakeTuning
    bridge: BridgeTuning

    def variables(self) -> dict[str, Any]:
        return {
            "stack_name": self.stack_name,
            "region": self.region,
            "lambda_image_uri": (
                f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.stack_name}/lambda@{IMAGE_DIGEST}"
            ),
            # so that destroy leaves nothing behind
            "force_destroy_bucket": True,
            "table_deletion_protection": False,
            "secret_recovery_window_in_days": 0,
            **tuning_variables(self.tuning, self.lake, self.bridge),
        }

    def spec(self, queue_endpoint: str | None = None) -> StackSpec:
        return stack_spec(
            self.stack_name,
            self.region,
            self.account_id,
            self.tuning,
            queue_endpoint=queue_endpoint,
            lake=self.lake,
            bridge=self.bridge,
        )


DEPLOYMENT = Deployment(
    stack_name="acme-hes",
    region="eu-west-1",
    account_id="123456789012",  # moto's account
    tuning=ExportTuning(
        export_max_concurrency=4,
        plan_timeout_seconds=60,
        chunk_timeout_seconds=300,
        chunk_heartbeat_seconds=30,
        finalize_timeout_seconds=900,
        finalize_heartbeat_seconds=120,
    ),
    lake=LakeTuning(
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
    bridge=BridgeTuning(
        site_timeout_seconds=1_800,
        site_heartbeat_seconds=30,
        site_retry_interval_seconds=10,
        site_max_attempts=3,
    ),
)


@dataclass
class AppliedStack:
    terraform: Terraform
    cloud: MotoProcess
    deployment: Deployment
    planned_resources: int
    apply_output: str

    def state(self) -> dict[str, Any]:
        return self.terraform.state()


def terraform_for_moto(root: Path, cloud: MotoProcess, deployment: Deployment) -> Terraform:
    terraform = Terraform.copy_of(root)
    terraform.write("moto_override.tf", moto_provider_override(cloud.endpoint_url, deployment.region))
    terraform.set_variables(deployment.variables())
    terraform.init()
    return terraform


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    return DEPLOYMENT


@pytest.fixture(scope="session")
def applied_stack(tmp_path_factory: pytest.TempPathFactory, deployment: Deployment) -> Iterator[AppliedStack]:
    """GIVEN the whole stack applied by Terraform to a fresh moto server."""
    terraform_binary()
    with moto_process(deployment.region) as cloud:
        terraform = terraform_for_moto(tmp_path_factory.mktemp("apply"), cloud, deployment)
        planned = terraform.plan_to_file()
        applied = terraform.apply_plan()
        dump = os.environ.get("MF_DEPLOY_STATE_DUMP")
        if dump:  # for developing checks against the applied state without applying again
            Path(dump).write_text(json.dumps(terraform.state(), indent=1))
        yield AppliedStack(terraform, cloud, deployment, planned, applied.stdout)


@pytest.fixture(scope="session")
def local_runtime_cloud(deployment: Deployment) -> Iterator[MotoProcess]:
    """GIVEN the same deployment created by the local runtime (bootstrap) in another moto server."""
    from meterflow.localcloud.bootstrap import bootstrap
    from meterflow.localcloud.ssh_keys import generate_ssh_keypair

    with moto_process(deployment.region) as cloud:
        bootstrap(deployment.spec(cloud.endpoint_url), cloud.clients(), generate_ssh_keypair().private_pem)
        yield cloud
