"""The on-premises bridge end to end: a real broker (mutual TLS, per-worker ACL), the worker as a
separate process reading a local historian, and the historian_backfill workflow in the local cloud
driven over HTTP. A killed worker fails its attempt by heartbeat timeout and the retry completes; a
duplicate job runs once; a malformed job is reported and the worker keeps serving; cancelling stops
the job on site; a worker cannot touch another tenant's topics; a forged result changes nothing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet
from meterflow.lake.domain.dataflows import publish_topology
from meterflow.lake.wiring import LakeServices, lake_services
from meterflow.localcloud.historian_seed import seed_historian
from meterflow.localcloud.local_cloud import LocalCloud
from meterflow.localcloud.mqtt_broker import BrokerIdentity, MqttClientOptions, mqtt_client_options
from meterflow.localcloud.onsite_worker import OnsiteWorker
from onprem_worker.contracts import Channel, JobMessage, ResultMessage, topic
from tests.e2e.lake_support import manifest, wait_for, wait_ingested
from tests.support.upload_stub import UploadStub

pytestmark = pytest.mark.e2e

TENANT, WORKER = "north", "plant-1"
# What the historian holds: half a day of the e2e fleet (10,000 meters), seeded once.
HISTORY_START = datetime(2023, 3, 6)
HISTORY_END = datetime(2023, 3, 6, 12)
SHORT = (datetime(2023, 3, 6, 0), datetime(2023, 3, 6, 1))


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Observer:
    """A client with the cloud bridge's identity: sees what sites publish, publishes as the cloud."""

    def __init__(self, options: MqttClientOptions, subscriptions: list[str]) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.granted: list[int] = []  # SUBACK codes: 0-2 granted QoS, 0x80 and up refused
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=options.client_id, protocol=options.protocol
        )
        self.client.tls_set_context(options.tls_context())
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(options.host, options.port)
        self.client.loop_start()
        assert connected.wait(15), "observer not connected"
        if subscriptions:
            self.client.subscribe([(name, 1) for name in subscriptions])
            assert self._subscribed.wait(15), "no SUBACK"

    def _on_subscribe(self, _client: Any, _userdata: Any, _mid: int, codes: list[Any], _props: Any) -> None:
        self.granted.extend(int(code.value) for code in codes)
        self._subscribed.set()

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def results(self, job_id: str) -> list[ResultMessage]:
        with self._lock:
            found = [
                ResultMessage.parse(payload) for name, payload in self.messages if name.endswith("/results")
            ]
        return [result for result in found if result.job_id == job_id]

    def publish(self, topic_name: str, payload: bytes) -> None:
        self.client.publish(topic_name, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def lake(cloud: LocalCloud, fleet: Fleet) -> LakeServices:
    """The lake, with the fleet's topology (its meter registry) published."""
    services = lake_services()
    publish_topology(fleet, services.integrated)
    return services


@pytest.fixture(scope="module")
def historian_url(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('historian') / 'readings.db'}"
    seed_historian(url, fleet, HISTORY_START, HISTORY_END)
    return url


@pytest.fixture(scope="module")
def site_environment(
    cloud: LocalCloud, historian_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("site")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        **cloud.provision_site(TENANT, WORKER),
        "MF_HISTORIAN_URL": historian_url,
        "MF_HISTORIAN_BATCH_ROWS": "20000",
        "MF_JOURNAL_PATH": str(home / "journal.sqlite"),
        "MF_HEALTH_FILE": str(home / "healthy"),
    }


@pytest.fixture(scope="module")
def worker(
    site_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OnsiteWorker]:
    running = OnsiteWorker(site_environment, tmp_path_factory.mktemp("logs") / "worker.log").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def observer(cloud: LocalCloud) -> Iterator[Observer]:
    assert cloud.broker is not None
    options = mqtt_client_options(BrokerIdentity.bridge(), cloud.broker, connection="e2e-observer")
    watching = Observer(
        options, [topic(TENANT, WORKER, channel) for channel in (Channel.RESULTS, Channel.PROGRESS)]
    )
    yield watching
    watching.close()


def start_backfill(cloud: LocalCloud, start: datetime, end: datetime) -> str:
    response = requests.post(
        f"{cloud.api_url}/backfills",
        json={"tenant": TENANT, "worker": WORKER, "start": iso(start), "end": iso(end)},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job_status(cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{cloud.api_url}/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_job(
    cloud: LocalCloud, job_id: str, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    return wait_for(lambda: body if condition(body := job_status(cloud, job_id)) else None, 180, what)


def execution(lake: LakeServices, cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    assert cloud.bridge_settings is not None
    arn = (
        cloud.bridge_settings.backfill_state_machine_arn.replace(":stateMachine:", ":execution:")
        + f":{job_id}"
    )
    return dict(lake.clients.stepfunctions.describe_execution(executionArn=arn)) | {"executionArn": arn}


def test_backfill_uploads_the_historians_rows_into_the_lake(
    cloud: LocalCloud, lake: LakeServices, fleet: Fleet, worker: OnsiteWorker, observer: Observer
) -> None:
    # GIVEN a site worker whose historian holds the fleet's readings
    # WHEN an hour is backfilled over HTTP
    job_id = start_backfill(cloud, *SHORT)
    done = wait_job(
        cloud, job_id, lambda body: body["status"] in {"succeeded", "failed"}, "the backfill to end"
    )
    # THEN it succeeded in one attempt, with progress shown on the way
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    window = fleet.window(*SHORT)
    assert done["output"]["rows"] == window.record_count
    # AND the uploaded file is exactly the historian's rows (the simulator's, in the HES format)
    uploaded = lake.inbound.get(f"uncompressed/historian/{TENANT}/{job_id}.csv")
    assert uploaded is not None
    assert uploaded.data == encode_csv(fleet.records(window, 0, window.record_count))
    # AND the lake ingested it: six long rows per reading
    file_id = f"historian-{TENANT}-{job_id}"
    wait_ingested(lake, file_id)
    assert manifest(lake, file_id)["rows_staged"] == 6 * window.record_count
    # AND exactly one result came from the site, a success
    assert [result.status.value for result in observer.results(job_id)] == ["succeeded"]
    assert execution(lake, cloud, job_id)["status"] == "SUCCEEDED"


def test_a_killed_worker_fails_the_attempt_by_heartbeat_and_the_retry_completes(
    cloud: LocalCloud, lake: LakeServices, fleet: Fleet, worker: OnsiteWorker, observer: Observer
) -> None:
    # GIVEN a long backfill running on site
    job_id = start_backfill(cloud, HISTORY_START, HISTORY_END)
    wait_job(cloud, job_id, lambda body: body["status"] == "running" and body["rows"] > 0, "the job to run")
    # WHEN the worker is killed mid-job, and restarted once the lapsed heartbeat made the Task retry
    worker.kill()
    wait_job(cloud, job_id, lambda body: body["attempts"] == 2, "the retry to be dispatched")
    worker.start()
    # THEN the attempt failed by heartbeat timeout and the retry, on the restarted worker, completed
    done = wait_job(
        cloud, job_id, lambda body: body["status"] in {"succeeded", "failed"}, "the backfill to end"
    )
    assert done["status"] == "succeeded", done["failure_reason"]
    assert done["attempts"] == 2
    arn = execution(lake, cloud, job_id)["executionArn"]
    events = lake.clients.stepfunctions.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    # the only timeout that can lapse here is the 6 s heartbeat (the Task's own is 300 s); moto names
    # it States.Timeout where AWS says States.HeartbeatTimeout, and the Retry covers both
    assert [event["type"] for event in events].count("TaskTimedOut") == 1
    # AND one success was reported, for the second attempt, with the whole window uploaded once
    succeeded = [result for result in observer.results(job_id) if result.status.value == "succeeded"]
    assert len(succeeded) == 1
    window = fleet.window(HISTORY_START, HISTORY_END)
    assert succeeded[0].output is not None and succeeded[0].output["rows"] == window.record_count
    uploaded = lake.inbound.head(f"uncompressed/historian/{TENANT}/{job_id}.csv")
    assert uploaded is not None and uploaded.size == succeeded[0].output["bytes"]


def test_a_duplicate_job_message_runs_once(worker: OnsiteWorker, observer: Observer) -> None:
    # GIVEN a job message delivered twice (QoS 1 redelivery), uploading to a stub that counts PUTs
    with UploadStub() as stub:
        message = JobMessage(
            job_id="duplicate-1",
            job_type="historian.export",
            task_token="token-duplicate-1",
            heartbeat_seconds=30,
            payload={
                "start": iso(SHORT[0]),
                "end": iso(SHORT[0] + timedelta(minutes=15)),
                "upload_url": stub.url(),
            },
            issued_at=datetime.now(),
        ).encode()
        # WHEN the worker receives it twice
        observer.publish(topic(TENANT, WORKER, Channel.JOBS), message)
        wait_for(lambda: observer.results("duplicate-1"), 60, "the first result")
        observer.publish(topic(TENANT, WORKER, Channel.JOBS), message)
        time.sleep(2)
        # THEN the job ran once: one upload, and every result sent is the same result
        assert len(stub.uploads) == 1
        results = observer.results("duplicate-1")
        assert {result.encode() for result in results} == {results[0].encode()}
        assert results[0].status.value == "succeeded"


def test_a_malformed_job_is_a_failure_and_the_worker_keeps_serving(
    cloud: LocalCloud, worker: OnsiteWorker, observer: Observer
) -> None:
    # GIVEN a job whose payload is not a historian export, but whose token is readable
    broken = JobMessage(
        job_id="malformed-1",
        job_type="historian.export",
        task_token="token-malformed-1",
        heartbeat_seconds=30,
        payload={"nonsense": True},
        issued_at=datetime.now(),
    ).encode()
    # WHEN it is published THEN it is answered as a failure naming the problem
    observer.publish(topic(TENANT, WORKER, Channel.JOBS), broken)
    [result] = wait_for(lambda: observer.results("malformed-1"), 60, "the malformed job's answer")
    assert result.status.value == "failed" and result.error
    # AND the worker still serves the next backfill
    job_id = start_backfill(cloud, *SHORT)
    done = wait_job(
        cloud, job_id, lambda body: body["status"] in {"succeeded", "failed"}, "the next backfill"
    )
    assert done["status"] == "succeeded", done


def test_cancelling_a_backfill_stops_the_job_on_site(
    cloud: LocalCloud, lake: LakeServices, worker: OnsiteWorker, observer: Observer
) -> None:
    # GIVEN a long backfill running on site
    job_id = start_backfill(cloud, HISTORY_START, HISTORY_END)
    wait_job(cloud, job_id, lambda body: body["status"] == "running", "the job to run")
    # WHEN it is cancelled over HTTP
    response = requests.post(f"{cloud.api_url}/jobs/{job_id}/cancel", timeout=10)
    assert response.status_code == 200, response.text
    # THEN the execution is aborted, the job cancelled, and the site reports the job cancelled
    assert response.json()["status"] == "cancelled"
    # (AWS ends a stopped execution ABORTED at once; moto's interpreter only notices the stop when
    # the waiting Task is answered, the site's "cancelled", and then ends it FAILED)
    wait_for(
        lambda: execution(lake, cloud, job_id)["status"] in {"ABORTED", "FAILED"}, 30, "the execution to stop"
    )
    [result] = wait_for(lambda: observer.results(job_id), 60, "the site's answer")
    assert (result.status.value, result.error) == ("cancelled", "JobCancelled")
    assert job_status(cloud, job_id)["status"] == "cancelled"
    # AND a second cancel is refused
    assert requests.post(f"{cloud.api_url}/jobs/{job_id}/cancel", timeout=10).status_code == 409


def test_a_worker_cannot_subscribe_to_another_tenants_jobs(cloud: LocalCloud, observer: Observer) -> None:
    # GIVEN tenant south's worker, admitted with its own certificate
    assert cloud.broker is not None
    cloud.provision_site("south", "plant-9")
    options = mqtt_client_options(BrokerIdentity.worker("south", "plant-9"), cloud.broker, connection="spy")
    # WHEN it subscribes to tenant north's jobs topic
    spy = Observer(options, [topic(TENANT, WORKER, Channel.JOBS)])
    try:
        observer.publish(topic(TENANT, WORKER, Channel.JOBS), b'{"probe": true}')
        time.sleep(1)
        # THEN nothing of north's reaches it: the embedded broker refuses the SUBSCRIBE (0x80),
        # Mosquitto grants it but filters every message by the ACL
        assert spy.granted
        if cloud.broker.kind == "embedded":
            assert all(code >= 0x80 for code in spy.granted), spy.granted
        assert spy.messages == []
    finally:
        spy.close()


def test_a_forged_result_without_the_attempts_token_changes_nothing(
    cloud: LocalCloud, lake: LakeServices, worker: OnsiteWorker, site_environment: dict[str, str]
) -> None:
    # GIVEN a long backfill running on site
    job_id = start_backfill(cloud, HISTORY_START, HISTORY_END)
    wait_job(cloud, job_id, lambda body: body["status"] == "running", "the job to run")
    # WHEN a "success" with a made-up token is published on the worker's own results topic
    assert cloud.broker is not None
    options = mqtt_client_options(BrokerIdentity.worker(TENANT, WORKER), cloud.broker, connection="forger")
    forger = Observer(options, [])
    forged = ResultMessage(
        job_id=job_id,
        task_token="not-the-token",
        status="succeeded",
        output={"rows": 1, "bytes": 1},
        finished_at=datetime.now(),
    )
    forger.publish(topic(TENANT, WORKER, Channel.RESULTS), forged.encode())
    forger.close()
    time.sleep(3)
    # THEN the job is still running and so is its execution; it then ends on its own result
    assert job_status(cloud, job_id)["status"] == "running"
    assert execution(lake, cloud, job_id)["status"] == "RUNNING"
    done = wait_job(
        cloud, job_id, lambda body: body["status"] in {"succeeded", "failed"}, "the backfill to end"
    )
    assert done["status"] == "succeeded" and done["output"]["rows"] > 1
