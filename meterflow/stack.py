"""The one resource definition of the Meterflow stack.

The local runtime creates exactly these resources in the local cloud (moto, LocalStack), the
Terraform in ``terraform/`` declares the same ones for AWS, and ``tests/static/test_drift.py`` fails
when the two disagree. Names derive from the stack name (and the account id for globally unique
bucket names), so both sides compute them the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_MACHINE_DIR = REPO_ROOT / "state_machines"


@dataclass(frozen=True)
class QueueSpec:
    """A work queue and its dead-letter queue: every queue in Meterflow has one."""

    key: str
    name: str
    visibility_timeout_seconds: int
    max_receive_count: int
    message_retention_seconds: int = 1_209_600  # 14 days: the DLQ keeps what we could not process

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class TableSpec:
    key: str
    name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class BucketSpec:
    key: str
    name: str


@dataclass(frozen=True)
class SecretSpec:
    key: str
    name: str
    description: str


@dataclass(frozen=True)
class StateMachineSpec:
    """A state machine whose ASL is ``state_machines/<file>``, a Terraform ``templatefile``."""

    key: str
    name: str
    definition_file: str
    # template variable -> value; values name other resources, so they are filled per deployment
    template_vars: Mapping[str, str | int] = field(default_factory=dict)

    def render(self) -> str:
        """The definition with its ``${var}`` placeholders filled, exactly as Terraform's templatefile."""
        return render_template((STATE_MACHINE_DIR / self.definition_file).read_text(), self.template_vars)


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_template(text: str, variables: Mapping[str, str | int]) -> str:
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in variables})
    if missing:
        raise KeyError(f"template variables without a value: {missing}")
    rendered = _PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]), text)
    json.loads(rendered)  # a definition that is not JSON after rendering must fail here, not in AWS
    return rendered


def template_variables(definition_file: str) -> set[str]:
    return set(_PLACEHOLDER.findall((STATE_MACHINE_DIR / definition_file).read_text()))


@dataclass(frozen=True)
class ExportTuning:
    """Timeouts and concurrency of the export workflow (Terraform variables of the same names)."""

    export_max_concurrency: int = 8
    plan_timeout_seconds: int = 120
    chunk_timeout_seconds: int = 600
    chunk_heartbeat_seconds: int = 60
    finalize_timeout_seconds: int = 600
    finalize_heartbeat_seconds: int = 60


@dataclass(frozen=True)
class StackSpec:
    stack_name: str
    region: str
    account_id: str
    buckets: tuple[BucketSpec, ...]
    queues: tuple[QueueSpec, ...]
    tables: tuple[TableSpec, ...]
    secrets: tuple[SecretSpec, ...]
    state_machines: tuple[StateMachineSpec, ...]

    def bucket(self, key: str) -> BucketSpec:
        return next(item for item in self.buckets if item.key == key)

    def queue(self, key: str) -> QueueSpec:
        return next(item for item in self.queues if item.key == key)

    def table(self, key: str) -> TableSpec:
        return next(item for item in self.tables if item.key == key)

    def secret(self, key: str) -> SecretSpec:
        return next(item for item in self.secrets if item.key == key)

    def state_machine(self, key: str) -> StateMachineSpec:
        return next(item for item in self.state_machines if item.key == key)

    def queue_url(self, key: str, endpoint: str | None = None) -> str:
        base = endpoint.rstrip("/") if endpoint else f"https://sqs.{self.region}.amazonaws.com"
        return f"{base}/{self.account_id}/{self.queue(key).name}"

    def state_machine_arn(self, key: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{self.state_machine(key).name}"


def stack_spec(
    stack_name: str = "meterflow",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    tuning: ExportTuning | None = None,
    queue_endpoint: str | None = None,
) -> StackSpec:
    """The stack's resources. ``queue_endpoint`` makes queue URLs point at a local cloud."""
    tuning = tuning or ExportTuning()
    buckets = (BucketSpec("hes_exports", f"{stack_name}-hes-exports-{account_id}"),)
    queues = (
        QueueSpec(
            "file_requests", f"{stack_name}-file-requests", visibility_timeout_seconds=60, max_receive_count=5
        ),
        # A chunk job runs for at most chunk_timeout_seconds; the visibility timeout must outlast it so
        # a slow but healthy worker is not raced by a second one.
        QueueSpec(
            "export_jobs",
            f"{stack_name}-export-jobs",
            visibility_timeout_seconds=tuning.chunk_timeout_seconds + 60,
            max_receive_count=3,
        ),
    )
    tables = (
        TableSpec(
            "file_requests", f"{stack_name}-file-requests", hash_key="request_id", ttl_attribute="expires_at"
        ),
    )
    secrets = (
        SecretSpec(
            "sftp_private_key",
            f"{stack_name}/sftp/private_key",
            "Private key of the HES SFTP user (seed 000: retrieve it, chmod 400, sftp -i).",
        ),
    )
    spec = StackSpec(stack_name, region, account_id, buckets, queues, tables, secrets, ())
    export_machine = StateMachineSpec(
        "hes_export",
        f"{stack_name}-hes-export",
        "hes_export.asl.json",
        {
            "export_jobs_queue_url": spec.queue_url("export_jobs", queue_endpoint),
            "file_requests_table": tables[0].name,
            "max_concurrency": tuning.export_max_concurrency,
            "plan_timeout_seconds": tuning.plan_timeout_seconds,
            "chunk_timeout_seconds": tuning.chunk_timeout_seconds,
            "chunk_heartbeat_seconds": tuning.chunk_heartbeat_seconds,
            "finalize_timeout_seconds": tuning.finalize_timeout_seconds,
            "finalize_heartbeat_seconds": tuning.finalize_heartbeat_seconds,
        },
    )
    return StackSpec(stack_name, region, account_id, buckets, queues, tables, secrets, (export_machine,))
