"""Lake event handlers: start_file_ingest (S3 notifications), run_lake_job (lake-jobs queue),
merge_late_reads (EventBridge rule -> late-reads queue) and the schedule_input_adapters tick."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from chalice.test import Client

from meterflow.aws.task_runner import MalformedJob
from meterflow.core.errors import IntegrityError, InvalidInput
from meterflow.core.timeutil import format_hes_time
from meterflow.hes.domain.export import encode_csv
from meterflow.hes.wiring import hes_services
from meterflow.lake.domain.dataflows import publish_topology
from meterflow.lake.domain.integrations import Integration
from meterflow.lake.wiring import lake_services
from tests.support.inprocess_stack import InProcessStack, Invoke

# The file answers the window [04:00, 05:00) but also holds reads of 00:00, an hour that closed long
# before the window began: those are late reads, merged by merge_late_reads after the ingestion.
WINDOW_START = datetime(2023, 1, 2, 4)
LATE_HOUR = datetime(2023, 1, 2, 0)
METERS_PER_HOUR = 40
LAKE_JOBS = {"lake_jobs": "run_lake_job"}
CONNECTION = {
    "hes_api_url": "https://hes.example",
    "sftp_host": "sftp.example",
    "sftp_host_key": "ssh-ed25519 AAAA",
    "sftp_secret_name": "hes-sftp",
}


@dataclass(frozen=True)
class LandedFile:
    file_id: str
    key: str
    notification: str  # what S3 put on the uncompressed-objects queue


@dataclass(frozen=True)
class IngestingFile:
    file_id: str
    execution_arn: str


@pytest.fixture(scope="package")
def meter_registry(stack: InProcessStack) -> None:
    """The fleet's topology in the integrated bucket: ingestion quarantines reads of unknown meters."""
    publish_topology(hes_services().fleet, lake_services().integrated)
    hes_services.cache_clear()
    lake_services.cache_clear()


@pytest.fixture
def landed_file(client: Client, stack: InProcessStack) -> LandedFile:
    """A HES file under uncompressed/ (as the input adapter leaves it), announced by S3 on its queue."""
    fleet = hes_services().fleet
    data = b"".join(
        encode_csv(fleet.records(fleet.window(hour, hour + timedelta(hours=1)), 0, METERS_PER_HOUR))
        for hour in (LATE_HOUR, WINDOW_START)
    )
    file_id = f"functional-{uuid.uuid4().hex[:12]}"
    key = f"uncompressed/functional/{file_id}.csv"
    stack.clients.s3.put_object(
        Bucket=stack.spec.bucket("inbound").name,
        Key=key,
        Body=data,
        Metadata={
            "file-id": file_id,
            "file-format": "hes_wide",
            "reading-source": "hes",
            "window-start": format_hes_time(WINDOW_START),
            "window-end": format_hes_time(WINDOW_START + timedelta(hours=1)),
            "arrive-time": "2023-01-02T05:10:00",
        },
    )
    notification = stack.next_message("uncompressed_objects", lambda body: file_id in json.dumps(body))
    return LandedFile(file_id, key, notification)


def ingestions_of(stack: InProcessStack, file_id: str) -> list[str]:
    return [e["executionArn"] for e in stack.executions("lake_ingest") if e["name"].startswith(file_id)]


@pytest.fixture
def ingesting_file(
    landed_file: LandedFile, meter_registry: None, invoke: Invoke, stack: InProcessStack
) -> IngestingFile:
    """The file's ingestion workflow started, waiting for its first job."""
    invoke.sqs("start_file_ingest", landed_file.notification)
    (arn,) = ingestions_of(stack, landed_file.file_id)
    return IngestingFile(landed_file.file_id, arn)


@pytest.fixture
def late_reads_event(ingesting_file: IngestingFile, invoke: Invoke, stack: InProcessStack) -> str:
    """The file ingested; the LateReadsStaged event its finalize job announced, as the rule delivered it."""
    assert invoke.until_ended(ingesting_file.execution_arn, LAKE_JOBS) == "SUCCEEDED"
    return stack.next_message(
        "late_reads", lambda body: body["detail"].get("file_id") == ingesting_file.file_id
    )


# -- start_file_ingest ------------------------------------------------------------------------------------


def test_start_file_ingest_starts_one_ingestion_per_announced_file(
    landed_file: LandedFile, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN the S3 notification of the file is delivered
    invoke.sqs("start_file_ingest", landed_file.notification)
    # THEN one ingestion runs for it, which records the file as ingesting and sends its split job
    (arn,) = ingestions_of(stack, landed_file.file_id)
    stack.wait_until_entered(arn, "SplitFile")
    row = stack.item("lake_files", file_id=landed_file.file_id)
    assert row is not None and row["status"] == "ingesting"
    split = stack.next_message("lake_jobs", lambda body: body["job_type"] == "split_file")
    assert json.loads(split)["payload"]["key"] == landed_file.key
    # AND WHEN S3's notification is delivered again THEN no second ingestion starts
    invoke.sqs("start_file_ingest", landed_file.notification)
    assert ingestions_of(stack, landed_file.file_id) == [arn]


def test_start_file_ingest_ignores_the_test_event_and_files_deleted_since(
    landed_file: LandedFile, invoke: Invoke, stack: InProcessStack
) -> None:
    before = len(stack.executions("lake_ingest"))
    # GIVEN S3's test event (sent when the notification is configured) and a file deleted since announced
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "inbound"})
    stack.clients.s3.delete_object(Bucket=stack.spec.bucket("inbound").name, Key=landed_file.key)
    # WHEN each is delivered THEN the handler completes and starts nothing
    invoke.sqs("start_file_ingest", test_event)
    invoke.sqs("start_file_ingest", landed_file.notification)
    assert len(stack.executions("lake_ingest")) == before


def test_start_file_ingest_fails_a_notification_that_is_not_one_so_it_goes_to_the_dlq(
    invoke: Invoke,
) -> None:
    with pytest.raises(InvalidInput):
        invoke.sqs("start_file_ingest", "not json")
    with pytest.raises(InvalidInput):
        invoke.sqs("start_file_ingest", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}))


# -- run_lake_job -----------------------------------------------------------------------------------------


def test_run_lake_job_ingests_a_file_through_every_job_of_the_workflow(
    ingesting_file: IngestingFile, invoke: Invoke, stack: InProcessStack
) -> None:
    # WHEN run_lake_job answers every job the ingestion sends (split, stage, plan, compact, finalize)
    status = invoke.until_ended(ingesting_file.execution_arn, LAKE_JOBS)
    # THEN the ingestion succeeds through each of its task-token steps
    assert status == "SUCCEEDED"
    entered = set(stack.entered_states(ingesting_file.execution_arn))
    assert {"SplitFile", "StageRange", "PlanCompaction", "CompactGroup", "FinalizeFile"} <= entered
    # AND the file is recorded ingested: every line read, the on-time hour's rows written
    row = stack.item("lake_files", file_id=ingesting_file.file_id)
    assert row is not None and row["status"] == "ingested"
    assert int(row["lines_read"]) == 2 * METERS_PER_HOUR
    assert int(row["lines_quarantined"]) == 0
    # AND its manifest adds up and names the late hour's partitions
    manifest = json.loads(
        stack.clients.s3.get_object(Bucket=stack.spec.bucket("integrated").name, Key=row["manifest_key"])[
            "Body"
        ].read()
    )
    assert all(manifest["checks"].values())
    assert manifest["late_groups"] == 1


def test_run_lake_job_fails_the_task_of_an_unknown_job_type(
    ingesting_file: IngestingFile, invoke: Invoke, stack: InProcessStack
) -> None:
    split = stack.next_message("lake_jobs", lambda body: body["job_type"] == "split_file")
    # WHEN a job of a type no lake handler knows arrives with the split's live task token
    invoke.sqs("run_lake_job", json.dumps(json.loads(split) | {"job_type": "export_chunk"}))
    # THEN the task fails, and the workflow's Catch records the file as failed, naming why
    assert stack.wait_until_ended(ingesting_file.execution_arn) == "FAILED"
    row = stack.item("lake_files", file_id=ingesting_file.file_id)
    assert row is not None and row["status"] == "failed"
    assert "UnknownJobType" in row["failure_reason"]


def test_run_lake_job_raises_on_a_message_without_a_task_token(invoke: Invoke) -> None:
    with pytest.raises(MalformedJob):
        invoke.sqs("run_lake_job", json.dumps({"version": 1, "job_type": "split_file", "payload": {}}))


# -- merge_late_reads -------------------------------------------------------------------------------------


def test_merge_late_reads_merges_the_announced_rows_into_their_partitions_once(
    late_reads_event: str, invoke: Invoke, stack: InProcessStack
) -> None:
    detail = json.loads(late_reads_event)["detail"]
    integrated = stack.spec.bucket("integrated").name
    record_key = f"manifests/{detail['file_id']}/late/group-{detail['group_index']:05d}.json"
    # WHEN the event the finalize job published is delivered
    invoke.sqs("merge_late_reads", late_reads_event)
    # THEN its record says every announced row was added to the late hour's partitions
    record = json.loads(stack.clients.s3.get_object(Bucket=integrated, Key=record_key)["Body"].read())
    assert record["rows_added"] == detail["rows"] == 6 * METERS_PER_HOUR
    assert {partition["partition"] for partition in record["partitions"]} == set(detail["partitions"])
    assert all(partition.endswith(f"{LATE_HOUR:%Y%m%d%H}") for partition in detail["partitions"])
    # AND WHEN EventBridge delivers it again THEN the same record answers: nothing is added twice
    invoke.sqs("merge_late_reads", late_reads_event)
    again = json.loads(stack.clients.s3.get_object(Bucket=integrated, Key=record_key)["Body"].read())
    assert again == record


def test_merge_late_reads_fails_a_malformed_or_inconsistent_event_so_it_goes_to_the_dlq(
    late_reads_event: str, invoke: Invoke
) -> None:
    envelope = json.loads(late_reads_event)
    with pytest.raises(InvalidInput):
        invoke.sqs("merge_late_reads", "not json")
    with pytest.raises(InvalidInput):
        invoke.sqs("merge_late_reads", json.dumps(envelope | {"detail": None}))
    # an event announcing more rows than the staged objects hold must not be merged
    inflated = envelope | {"detail": envelope["detail"] | {"rows": envelope["detail"]["rows"] + 1}}
    with pytest.raises(IntegrityError):
        invoke.sqs("merge_late_reads", json.dumps(inflated))


# -- schedule_input_adapters ------------------------------------------------------------------------------


@pytest.fixture
def integrations(client: Client, stack: InProcessStack) -> Iterator[list[Integration]]:
    """Integrations this test puts in the table; removed after it, so no later tick sees them."""
    created: list[Integration] = []
    yield created
    for integration in created:
        stack.delete_item("integrations", integration_id=integration.integration_id)


def put_integration(created: list[Integration], first_window: datetime, **changes: object) -> Integration:
    integration = Integration.new(
        f"fn-{uuid.uuid4().hex[:10]}", first_window, 60, 15, **CONNECTION
    ).model_copy(update=changes)
    lake_services().integrations.put(integration)
    created.append(integration)
    return integration


def test_schedule_input_adapters_starts_each_due_integration_once(
    integrations: list[Integration], invoke: Invoke, stack: InProcessStack
) -> None:
    # GIVEN an idle integration whose first window settled long ago
    due = put_integration(integrations, datetime(2023, 1, 2))
    # WHEN the schedule ticks
    invoke.schedule("schedule_input_adapters")
    # THEN an input-adapter execution named after the integration and its window runs: it marks the
    # integration running and asks the HES for the window's file
    arn = stack.execution_arn("input_adapter", due.execution_name())
    stack.wait_until_entered(arn, "RequestFile")
    row = stack.item("integrations", integration_id=due.integration_id)
    assert row is not None and row["state"] == "running"
    request = stack.next_message("lake_jobs", lambda body: body["job_type"] == "request_hes_file")
    assert json.loads(request)["payload"]["integration_id"] == due.integration_id
    # AND WHEN the schedule ticks again THEN the running integration is not started again
    invoke.schedule("schedule_input_adapters")
    names = [execution["name"] for execution in stack.executions("input_adapter")]
    assert names.count(due.execution_name()) == 1


def test_schedule_input_adapters_leaves_disabled_and_unsettled_integrations_alone(
    integrations: list[Integration], invoke: Invoke, stack: InProcessStack
) -> None:
    # GIVEN a disabled integration and one whose window has not settled yet
    disabled = put_integration(integrations, datetime(2023, 1, 2), enabled=False)
    unsettled = put_integration(integrations, datetime(2100, 1, 1))
    # WHEN the schedule ticks THEN neither starts
    invoke.schedule("schedule_input_adapters")
    names = {execution["name"] for execution in stack.executions("input_adapter")}
    assert disabled.execution_name() not in names
    assert unsettled.execution_name() not in names


def test_schedule_input_adapters_fails_the_whole_tick_on_one_malformed_integration(
    integrations: list[Integration], invoke: Invoke, stack: InProcessStack
) -> None:
    # GIVEN a due integration, and a row of the table that is not a valid integration
    due = put_integration(integrations, datetime(2023, 1, 2))
    broken = put_integration(integrations, datetime(2023, 1, 2))
    stack.clients.dynamodb.put_item(
        TableName=stack.spec.table("integrations").name,
        Item={"integration_id": {"S": broken.integration_id}, "frequency_minutes": {"N": "1"}},
    )
    # WHEN the schedule ticks THEN the tick fails naming the bad field (the row must be fixed) ...
    with pytest.raises(InvalidInput):
        invoke.schedule("schedule_input_adapters")
    # ... and no integration starts, the valid one included (see the tier's findings)
    names = {execution["name"] for execution in stack.executions("input_adapter")}
    assert due.execution_name() not in names
