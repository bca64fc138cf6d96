"""The broker ACL: each worker gets exactly its own five topics, the bridge its patterns, nobody more."""

from __future__ import annotations

import pytest

from meterflow.localcloud.mqtt_broker import (
    BRIDGE_IDENTITY,
    BrokerIdentity,
    TopicAcl,
    TopicGrant,
    acl_for,
    client_id_belongs_to,
)
from onprem_worker.contracts import Channel, InvalidMessage, topic

ALPHA = BrokerIdentity.worker("tenant-a", "site-alpha")
BETA = BrokerIdentity.worker("tenant-b", "site-beta")
BRIDGE = BrokerIdentity.bridge()


def user_blocks(acl_text: str) -> dict[str, list[str]]:
    """The ACL's "topic" lines under each "user" line, as written."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in acl_text.splitlines():
        if line.startswith("user "):
            current = blocks.setdefault(line.removeprefix("user "), [])
        elif line.startswith("topic "):
            current.append(line)
        else:
            assert line == "" or line.startswith("#"), line
    return blocks


def test_each_worker_is_granted_exactly_its_own_topics() -> None:
    blocks = user_blocks(acl_for([ALPHA, BETA, BRIDGE]))

    assert blocks["site-alpha"] == [
        "topic read meterflow/tenant-a/site-alpha/jobs",
        "topic read meterflow/tenant-a/site-alpha/cancel",
        "topic write meterflow/tenant-a/site-alpha/results",
        "topic write meterflow/tenant-a/site-alpha/progress",
        "topic write meterflow/tenant-a/site-alpha/heartbeats",
    ]
    assert blocks["site-beta"] == [
        "topic read meterflow/tenant-b/site-beta/jobs",
        "topic read meterflow/tenant-b/site-beta/cancel",
        "topic write meterflow/tenant-b/site-beta/results",
        "topic write meterflow/tenant-b/site-beta/progress",
        "topic write meterflow/tenant-b/site-beta/heartbeats",
    ]
    worker_lines = blocks["site-alpha"] + blocks["site-beta"]
    assert not any("+" in line or "#" in line for line in worker_lines)


def test_the_bridge_reads_site_channels_and_writes_cloud_channels_of_every_worker() -> None:
    blocks = user_blocks(acl_for([ALPHA, BRIDGE]))

    assert blocks[BRIDGE_IDENTITY] == [
        "topic read meterflow/+/+/results",
        "topic read meterflow/+/+/progress",
        "topic read meterflow/+/+/heartbeats",
        "topic write meterflow/+/+/jobs",
        "topic write meterflow/+/+/cancel",
    ]
    assert set(blocks) == {"site-alpha", BRIDGE_IDENTITY}


def test_acl_lines_match_the_topics_the_contract_builds() -> None:
    grants = ALPHA.grants()

    assert {grant.pattern for grant in grants if grant.access == "read"} == {
        topic("tenant-a", "site-alpha", Channel.JOBS),
        topic("tenant-a", "site-alpha", Channel.CANCEL),
    }
    assert {grant.pattern for grant in grants if grant.access == "write"} == {
        topic("tenant-a", "site-alpha", channel)
        for channel in (Channel.RESULTS, Channel.PROGRESS, Channel.HEARTBEATS)
    }


@pytest.mark.parametrize(
    "topic_filter",
    [
        "meterflow/tenant-b/site-beta/jobs",
        "meterflow/tenant-b/site-beta/cancel",
        "meterflow/tenant-b/site-beta/results",
        "meterflow/+/site-beta/jobs",
        "meterflow/+/+/jobs",
        "meterflow/tenant-a/+/jobs",
        "meterflow/tenant-a/site-alpha/+",
        "meterflow/tenant-a/site-alpha/#",
        "meterflow/#",
        "#",
        "+/tenant-a/site-alpha/jobs",
        "meterflow/tenant-a/site-alpha/results",  # its own, but written by it and read by the cloud
        "meterflow/tenant-a/site-alpha/jobs/extra",
        "meterflow/tenant-a/site-alpha",
        "$SYS/#",
    ],
)
def test_a_worker_cannot_subscribe_beyond_its_own_jobs_and_cancel(topic_filter: str) -> None:
    acl = TopicAcl.parse(acl_for([ALPHA, BETA, BRIDGE]))

    assert not acl.may_subscribe("site-alpha", topic_filter)


def test_a_worker_reads_its_own_jobs_and_cancel_and_writes_only_its_site_channels() -> None:
    acl = TopicAcl.parse(acl_for([ALPHA, BETA, BRIDGE]))

    for channel in (Channel.JOBS, Channel.CANCEL):
        own = topic("tenant-a", "site-alpha", channel)
        assert acl.may_subscribe("site-alpha", own)
        assert acl.may_receive("site-alpha", own)
        assert not acl.may_publish("site-alpha", own), "a worker must not be able to queue jobs for itself"
        assert not acl.may_receive("site-alpha", topic("tenant-b", "site-beta", channel))
    for channel in (Channel.RESULTS, Channel.PROGRESS, Channel.HEARTBEATS):
        assert acl.may_publish("site-alpha", topic("tenant-a", "site-alpha", channel))
        assert not acl.may_publish("site-alpha", topic("tenant-b", "site-beta", channel))
        assert not acl.may_publish("site-alpha", topic("tenant-a", "site-beta", channel))
        assert not acl.may_receive("site-alpha", topic("tenant-a", "site-alpha", channel))


def test_the_bridge_cannot_read_jobs_or_forge_results() -> None:
    acl = TopicAcl.parse(acl_for([ALPHA, BETA, BRIDGE]))

    assert acl.may_subscribe(BRIDGE_IDENTITY, "meterflow/+/+/results")
    assert acl.may_subscribe(BRIDGE_IDENTITY, "meterflow/tenant-b/site-beta/heartbeats")
    assert acl.may_publish(BRIDGE_IDENTITY, "meterflow/tenant-b/site-beta/jobs")
    assert acl.may_publish(BRIDGE_IDENTITY, "meterflow/tenant-a/site-alpha/cancel")
    assert not acl.may_subscribe(BRIDGE_IDENTITY, "meterflow/#")
    assert not acl.may_subscribe(BRIDGE_IDENTITY, "meterflow/+/+/jobs")
    assert not acl.may_publish(BRIDGE_IDENTITY, "meterflow/tenant-a/site-alpha/results")
    assert not acl.may_publish(BRIDGE_IDENTITY, "elsewhere/tenant-a/site-alpha/jobs")


def test_an_identity_missing_from_the_acl_gets_nothing() -> None:
    acl = TopicAcl.parse(acl_for([ALPHA]))

    assert not acl.may_subscribe("site-beta", "meterflow/tenant-b/site-beta/jobs")
    assert not acl.may_publish("site-beta", "meterflow/tenant-b/site-beta/results")
    assert not acl.may_receive(None, "meterflow/tenant-a/site-alpha/jobs")


def test_one_worker_name_cannot_serve_two_tenants() -> None:
    # The broker knows a client only by its certificate's CN, so this would merge both tenants' topics.
    with pytest.raises(ValueError, match="declared twice"):
        acl_for([ALPHA, BrokerIdentity.worker("tenant-b", "site-alpha")])


def test_declaring_the_same_identity_twice_is_harmless() -> None:
    assert acl_for([ALPHA, BRIDGE, ALPHA]) == acl_for([ALPHA, BRIDGE])


@pytest.mark.parametrize(
    ("name", "tenant", "role"),
    [
        ("site-alpha", None, "worker"),
        ("meterflow-bridge", "tenant-a", "bridge"),
        ("site-alpha", "tenant-a", "admin"),
    ],
)
def test_identities_are_either_a_tenants_worker_or_the_tenantless_bridge(
    name: str, tenant: str | None, role: str
) -> None:
    with pytest.raises(ValueError, match=r"tenant|role"):
        BrokerIdentity(name=name, tenant=tenant, role=role)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["site a", "site-a\ntopic readwrite #", "Site-A", "site/a", "site+", "", "x" * 41],
)
def test_names_that_could_rewrite_the_acl_are_refused(name: str) -> None:
    with pytest.raises(InvalidMessage):
        BrokerIdentity.worker("tenant-a", name)
    with pytest.raises(InvalidMessage):
        BrokerIdentity.worker(name, "site-a")


def test_the_acl_parser_refuses_lines_acl_for_never_writes() -> None:
    with pytest.raises(ValueError, match="line 1"):
        TopicAcl.parse("topic read #\nuser site-alpha\n")
    with pytest.raises(ValueError, match="line 2"):
        TopicAcl.parse("user site-alpha\ntopic readwrite meterflow/#\n")
    with pytest.raises(ValueError, match="line 1"):
        TopicAcl.parse("pattern read meterflow/%u/#\n")


def test_parsed_grants_round_trip() -> None:
    acl = TopicAcl.parse("user site-alpha\ntopic write meterflow/tenant-a/site-alpha/results\n")

    assert acl.may_publish("site-alpha", "meterflow/tenant-a/site-alpha/results")
    assert TopicGrant("write", "meterflow/tenant-a/site-alpha/results") in ALPHA.grants()


@pytest.mark.parametrize(
    ("client_id", "identity", "belongs"),
    [
        ("site-alpha", "site-alpha", True),
        ("site-alpha:dispatch", "site-alpha", True),
        ("site-alpha-2", "site-alpha", False),
        ("site-alphax", "site-alpha", False),
        ("site", "site-alpha", False),
        ("", "site-alpha", False),
    ],
)
def test_client_ids_belong_to_the_identity_they_start_with(
    client_id: str, identity: str, belongs: bool
) -> None:
    assert client_id_belongs_to(client_id, identity) is belongs
