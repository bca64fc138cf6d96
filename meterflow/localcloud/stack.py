"""The one resource definition of the Meterflow stack.

The local runtime creates exactly these resources in the local cloud (moto, LocalStack), the
Terraform in ``terraform/`` declares the same ones for AWS, and ``tests/deploy`` applies that
Terraform to a moto server and fails when what it created differs from what the local runtime
creates. Names derive from the stack name (and the account id for globally unique bucket names),
so both sides compute them the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from meterflow.lake.domain.schema import LAKE_EVENT_SOURCE, LATE_READS_DETAIL_TYPE

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_MACHINE_DIR = REPO_ROOT / "state_machines"


@dataclass(frozen=True)
class QueueSpec:
    """A work queue and its dead-letter queue: every queue in Meterflow has one."""

    key: str
    name: str
    visibility_timeout_seconds: int
    max_receive_count: int
    message_retention_seconds: int = 345_600  # 4 days
    # 14 days, the SQS maximum. A message keeps its first enqueue time when it moves to the DLQ, so
    # the DLQ must keep messages longer than its queue or they expire there unseen.
    dlq_message_retention_seconds: int = 1_209_600

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
class TopicSpec:
    key: str
    name: str


@dataclass(frozen=True)
class BucketNotificationSpec:
    """Objects created under ``prefix`` in a bucket are announced on a queue (S3 -> SQS)."""

    bucket_key: str
    prefix: str
    queue_key: str


@dataclass(frozen=True)
class EventRuleSpec:
    """An EventBridge rule on the default bus that forwards matching events to a queue."""

    key: str
    name: str
    source: str
    detail_type: str
    queue_key: str

    @property
    def event_pattern(self) -> dict[str, list[str]]:
        return {"source": [self.source], "detail-type": [self.detail_type]}


@dataclass(frozen=True)
class ScheduleSpec:
    """A periodic trigger: an EventBridge schedule in AWS, the local runtime's scheduler locally."""

    key: str
    name: str
    rate_minutes: int
    handler: str  # module:function, a Chalice scheduled function

    @property
    def schedule_expression(self) -> str:
        return f"rate({self.rate_minutes} minute{'s' if self.rate_minutes != 1 else ''})"


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
class LakeTuning:
    """Timeouts, bounds and concurrency of the lake workflows (Terraform variables of the same names)."""

    range_max_concurrency: int = 8
    compact_max_concurrency: int = 8
    split_timeout_seconds: int = 120
    stage_timeout_seconds: int = 900
    stage_heartbeat_seconds: int = 60
    compact_timeout_seconds: int = 900
    compact_heartbeat_seconds: int = 60
    finalize_timeout_seconds: int = 300
    hes_job_timeout_seconds: int = 120
    transfer_timeout_seconds: int = 900
    transfer_heartbeat_seconds: int = 60
    hes_poll_interval_seconds: int = 10
    hes_poll_max_attempts: int = 90
    ingest_poll_interval_seconds: int = 10
    ingest_poll_max_attempts: int = 180
    scheduler_rate_minutes: int = 5

    @property
    def lake_jobs_visibility_seconds(self) -> int:
        longest = max(self.stage_timeout_seconds, self.compact_timeout_seconds, self.transfer_timeout_seconds)
        return longest + 60


@dataclass(frozen=True)
class BridgeTuning:
    """The on-premises bridge's bounds (Terraform variables of the same names)."""

    # A site job may run this long in all; the worker heartbeats at a third of site_heartbeat_seconds.
    site_timeout_seconds: int = 3_600
    site_heartbeat_seconds: int = 60
    site_retry_interval_seconds: int = 5
    site_max_attempts: int = 2

    @property
    def site_dispatch_visibility_seconds(self) -> int:
        return 60  # publishing takes seconds; the site's work is waited for by the Task, not the queue


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
    topics: tuple[TopicSpec, ...] = ()
    notifications: tuple[BucketNotificationSpec, ...] = ()
    event_rules: tuple[EventRuleSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    glue_database: str = ""
    athena_workgroup: str = ""

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

    def topic(self, key: str) -> TopicSpec:
        return next(item for item in self.topics if item.key == key)

    def event_rule(self, key: str) -> EventRuleSpec:
        return next(item for item in self.event_rules if item.key == key)

    def topic_arn(self, key: str) -> str:
        return f"arn:aws:sns:{self.region}:{self.account_id}:{self.topic(key).name}"

    def queue_arn(self, key: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{self.queue(key).name}"

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
    lake: LakeTuning | None = None,
    bridge: BridgeTuning | None = None,
) -> StackSpec:
    """The stack's resources. ``queue_endpoint`` makes queue URLs point at a local cloud."""
    tuning = tuning or ExportTuning()
    lake = lake or LakeTuning()
    bridge = bridge or BridgeTuning()
    buckets = _buckets(stack_name, account_id)
    queues = _queues(stack_name, tuning, lake, bridge)
    tables = _tables(stack_name)
    secrets = _secrets(stack_name)
    topics = (TopicSpec("alerts", f"{stack_name}-alerts"),)
    notifications = (BucketNotificationSpec("inbound", "uncompressed/", "uncompressed_objects"),)
    event_rules = (
        EventRuleSpec(
            "late_reads", f"{stack_name}-late-reads", LAKE_EVENT_SOURCE, LATE_READS_DETAIL_TYPE, "late_reads"
        ),
    )
    schedules = (
        ScheduleSpec(
            "input_adapter_scheduler",
            f"{stack_name}-input-adapter-scheduler",
            lake.scheduler_rate_minutes,
            "chalice_app.app:schedule_input_adapters",
        ),
    )
    base = StackSpec(stack_name, region, account_id, buckets, queues, tables, secrets, (), topics)
    return StackSpec(
        stack_name,
        region,
        account_id,
        buckets,
        queues,
        tables,
        secrets,
        _state_machines(base, queue_endpoint, tuning, lake, bridge),
        topics,
        notifications,
        event_rules,
        schedules,
        glue_database=f"{stack_name.replace('-', '_')}_lake",
        athena_workgroup=f"{stack_name}-lake",
    )


def _buckets(stack_name: str, account_id: str) -> tuple[BucketSpec, ...]:
    return (
        BucketSpec("hes_exports", f"{stack_name}-hes-exports-{account_id}"),
        # landing/ (compressed, as received), uncompressed/ (being ingested), processed/ (archive)
        BucketSpec("inbound", f"{stack_name}-inbound-{account_id}"),
        # readings/parquet/, weather/, topology/, staging/, manifests/, errors/
        BucketSpec("integrated", f"{stack_name}-integrated-{account_id}"),
        BucketSpec("athena_results", f"{stack_name}-athena-results-{account_id}"),
    )


def _queues(
    stack_name: str, tuning: ExportTuning, lake: LakeTuning, bridge: BridgeTuning
) -> tuple[QueueSpec, ...]:
    return (
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
        QueueSpec(
            "lake_jobs",
            f"{stack_name}-lake-jobs",
            visibility_timeout_seconds=lake.lake_jobs_visibility_seconds,
            max_receive_count=3,
        ),
        QueueSpec(
            "uncompressed_objects",
            f"{stack_name}-uncompressed-objects",
            visibility_timeout_seconds=60,
            max_receive_count=5,
        ),
        QueueSpec(
            "late_reads", f"{stack_name}-late-reads", visibility_timeout_seconds=300, max_receive_count=5
        ),
        # historian_backfill's cloud-side jobs (prepare the upload, verify it): seconds each
        QueueSpec(
            "bridge_jobs", f"{stack_name}-bridge-jobs", visibility_timeout_seconds=120, max_receive_count=3
        ),
        # historian_backfill's RunOnSite sends site jobs here; the dispatcher publishes them over MQTT
        QueueSpec(
            "site_dispatch",
            f"{stack_name}-site-dispatch",
            visibility_timeout_seconds=bridge.site_dispatch_visibility_seconds,
            max_receive_count=5,
        ),
        # what sites publish (results, progress, heartbeats), put here by the IoT rule / local bridge
        QueueSpec(
            "site_messages", f"{stack_name}-site-messages", visibility_timeout_seconds=60, max_receive_count=5
        ),
    )


def _tables(stack_name: str) -> tuple[TableSpec, ...]:
    return (
        TableSpec(
            "file_requests", f"{stack_name}-file-requests", hash_key="request_id", ttl_attribute="expires_at"
        ),
        TableSpec("integrations", f"{stack_name}-integrations", hash_key="integration_id"),
        TableSpec("lake_files", f"{stack_name}-lake-files", hash_key="file_id"),
        TableSpec("bridge_jobs", f"{stack_name}-bridge-jobs", hash_key="job_id", ttl_attribute="expires_at"),
    )


def _secrets(stack_name: str) -> tuple[SecretSpec, ...]:
    return (
        SecretSpec(
            "sftp_private_key",
            f"{stack_name}/sftp/private_key",
            "Private key of the HES SFTP user (seed 000: retrieve it, chmod 400, sftp -i).",
        ),
    )


def _state_machines(
    base: StackSpec, queue_endpoint: str | None, tuning: ExportTuning, lake: LakeTuning, bridge: BridgeTuning
) -> tuple[StateMachineSpec, ...]:
    """The workflows; their template variables name ``base``'s resources."""
    return (
        _export_machine(base, queue_endpoint, tuning),
        _ingest_machine(base, queue_endpoint, lake),
        _adapter_machine(base, queue_endpoint, lake),
        _backfill_machine(base, queue_endpoint, bridge),
    )


def _state_machine(base: StackSpec, key: str, template_vars: Mapping[str, str | int]) -> StateMachineSpec:
    """``state_machines/<key>.asl.json``, named ``<stack>-<key with dashes>``."""
    return StateMachineSpec(
        key, f"{base.stack_name}-{key.replace('_', '-')}", f"{key}.asl.json", template_vars
    )


def _export_machine(base: StackSpec, queue_endpoint: str | None, tuning: ExportTuning) -> StateMachineSpec:
    return _state_machine(
        base,
        "hes_export",
        {
            "export_jobs_queue_url": base.queue_url("export_jobs", queue_endpoint),
            "file_requests_table": base.table("file_requests").name,
            "max_concurrency": tuning.export_max_concurrency,
            "plan_timeout_seconds": tuning.plan_timeout_seconds,
            "chunk_timeout_seconds": tuning.chunk_timeout_seconds,
            "chunk_heartbeat_seconds": tuning.chunk_heartbeat_seconds,
            "finalize_timeout_seconds": tuning.finalize_timeout_seconds,
            "finalize_heartbeat_seconds": tuning.finalize_heartbeat_seconds,
        },
    )


def _ingest_machine(base: StackSpec, queue_endpoint: str | None, lake: LakeTuning) -> StateMachineSpec:
    return _state_machine(
        base,
        "lake_ingest",
        {
            "lake_jobs_queue_url": base.queue_url("lake_jobs", queue_endpoint),
            "lake_files_table": base.table("lake_files").name,
            "range_max_concurrency": lake.range_max_concurrency,
            "compact_max_concurrency": lake.compact_max_concurrency,
            "split_timeout_seconds": lake.split_timeout_seconds,
            "stage_timeout_seconds": lake.stage_timeout_seconds,
            "stage_heartbeat_seconds": lake.stage_heartbeat_seconds,
            "compact_timeout_seconds": lake.compact_timeout_seconds,
            "compact_heartbeat_seconds": lake.compact_heartbeat_seconds,
            "finalize_timeout_seconds": lake.finalize_timeout_seconds,
        },
    )


def _adapter_machine(base: StackSpec, queue_endpoint: str | None, lake: LakeTuning) -> StateMachineSpec:
    return _state_machine(
        base,
        "input_adapter",
        {
            "lake_jobs_queue_url": base.queue_url("lake_jobs", queue_endpoint),
            "integrations_table": base.table("integrations").name,
            "lake_files_table": base.table("lake_files").name,
            "alerts_topic_arn": base.topic_arn("alerts"),
            "inbound_bucket": base.bucket("inbound").name,
            "hes_job_timeout_seconds": lake.hes_job_timeout_seconds,
            "transfer_timeout_seconds": lake.transfer_timeout_seconds,
            "transfer_heartbeat_seconds": lake.transfer_heartbeat_seconds,
            "hes_poll_interval_seconds": lake.hes_poll_interval_seconds,
            "hes_poll_max_attempts": lake.hes_poll_max_attempts,
            "ingest_poll_interval_seconds": lake.ingest_poll_interval_seconds,
            "ingest_poll_max_attempts": lake.ingest_poll_max_attempts,
        },
    )


def _backfill_machine(base: StackSpec, queue_endpoint: str | None, bridge: BridgeTuning) -> StateMachineSpec:
    return _state_machine(
        base,
        "historian_backfill",
        {
            "bridge_jobs_queue_url": base.queue_url("bridge_jobs", queue_endpoint),
            "site_dispatch_queue_url": base.queue_url("site_dispatch", queue_endpoint),
            "bridge_jobs_table": base.table("bridge_jobs").name,
            "site_timeout_seconds": bridge.site_timeout_seconds,
            "site_heartbeat_seconds": bridge.site_heartbeat_seconds,
            "site_retry_interval_seconds": bridge.site_retry_interval_seconds,
            "site_max_attempts": bridge.site_max_attempts,
        },
    )
