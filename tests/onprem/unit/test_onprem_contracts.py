"""The cloud <-> site message contracts: versioned, validated, and strict about outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from onprem_worker.contracts import (
    CancelMessage,
    Channel,
    HeartbeatMessage,
    HistorianExportPayload,
    InvalidMessage,
    JobMessage,
    JobStatus,
    ProgressMessage,
    ResultMessage,
    is_valid_job_id,
    parse_topic,
    topic,
    valid_name,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def job_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "job_id": "backfill-1",
        "job_type": "noop",
        "task_token": "token-1",
        "heartbeat_seconds": 30,
        "payload": {},
        "issued_at": NOW,
    }
    return fields | overrides


@pytest.mark.parametrize(
    "message",
    [
        JobMessage(**job_fields()),
        CancelMessage(job_id="backfill-1", reason="execution stopped"),
        ResultMessage(
            job_id="backfill-1",
            task_token="t",
            status=JobStatus.SUCCEEDED,
            output={"rows": 3},
            finished_at=NOW,
        ),
        ResultMessage(
            job_id="backfill-1",
            task_token="t",
            status=JobStatus.FAILED,
            error="E",
            cause="c",
            finished_at=NOW,
        ),
        ProgressMessage(job_id="backfill-1", fraction=0.5, rows=10, at=NOW),
        HeartbeatMessage(job_id="backfill-1", task_token="t", at=NOW),
    ],
    ids=lambda message: type(message).__name__,
)
def test_every_message_survives_encode_then_parse(message: Any) -> None:
    # GIVEN a valid message WHEN it is encoded and parsed back THEN it is unchanged and versioned
    parsed = type(message).parse(message.encode())
    assert parsed == message
    assert parsed.version == 1


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "invalid JobMessage"),
        (JobMessage(**job_fields()).encode().replace(b'"version":1', b'"version":2'), "version"),
        (JobMessage(**job_fields()).encode().replace(b'"payload":{}', b'"payload":{},"extra":1'), "extra"),
        (JobMessage(**job_fields()).encode().replace(b'"backfill-1"', b'"a/b"'), "job_id"),
        (
            JobMessage(**job_fields()).encode().replace(b'"heartbeat_seconds":30', b'"heartbeat_seconds":0'),
            "heart",
        ),
    ],
)
def test_a_job_that_is_not_the_contract_is_rejected_with_the_offending_field(
    raw: bytes, fragment: str
) -> None:
    # GIVEN bytes that break the contract WHEN parsed THEN InvalidMessage names what is wrong
    with pytest.raises(InvalidMessage, match=fragment):
        JobMessage.parse(raw)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "succeeded", "error": "Boom"},
        {"status": "failed", "output": {"rows": 1}, "error": "Boom"},
        {"status": "failed"},
        {"status": "cancelled"},
    ],
)
def test_a_result_cannot_mix_success_and_failure(fields: dict[str, Any]) -> None:
    # GIVEN a result whose status contradicts its error or output WHEN it is built THEN it is refused
    with pytest.raises(ValueError, match="error"):
        ResultMessage(job_id="j", task_token="t", finished_at=NOW, **fields)


def test_topics_are_per_tenant_and_worker_and_round_trip() -> None:
    # GIVEN a tenant and a worker WHEN each channel's topic is built THEN it parses back to them
    for channel in Channel:
        name = topic("utility-a", "site-1", channel)
        assert name == f"meterflow/utility-a/site-1/{channel.value}"
        assert parse_topic(name) == ("utility-a", "site-1", channel)


@pytest.mark.parametrize(
    "name", ["meterflow/utility-a/site-1/other", "meterflow/utility-a/jobs", "iot/utility-a/site-1/jobs"]
)
def test_foreign_topics_are_rejected(name: str) -> None:
    with pytest.raises(InvalidMessage):
        parse_topic(name)


@pytest.mark.parametrize("tenant", ["Utility", "a/b", "+", "#", ""])
def test_topic_names_cannot_smuggle_wildcards_or_levels(tenant: str) -> None:
    # GIVEN a tenant name with MQTT wildcards, levels or capitals THEN no topic is built for it
    with pytest.raises(InvalidMessage):
        topic(tenant, "site-1", Channel.JOBS)


@pytest.mark.parametrize(("value", "valid"), [("job-1_a", True), ("", False), ("a b", False), (7, False)])
def test_job_ids_follow_one_rule(value: object, valid: bool) -> None:
    assert is_valid_job_id(value) is valid


def test_an_export_window_must_be_forward() -> None:
    # GIVEN an export payload whose end is not after its start THEN it is refused
    with pytest.raises(ValueError, match="end must be after start"):
        HistorianExportPayload(start=NOW, end=NOW, upload_url="https://bucket.s3/key?sig")


@pytest.mark.parametrize("name", ["plant-1\n", "plant-1\nextra", "\nplant-1"])
def test_a_name_with_a_newline_is_refused(name: str) -> None:
    # GIVEN a tenant or worker name with a newline ("$" alone would accept one at the end)
    # WHEN it is checked THEN it is refused: it would split the broker's ACL file and the topics
    with pytest.raises(InvalidMessage):
        valid_name(name, "worker")
    assert not is_valid_job_id(name)
