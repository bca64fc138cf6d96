"""The on-premises worker service: takes jobs over MQTT, runs each in its own thread, answers.

It dials out to the broker (no inbound port, no AWS credentials on site), keeps a persistent
session so jobs published while it is away wait for it, and subscribes to its own ``jobs`` and
``cancel`` topics only. A job is answered exactly by its task token:

* heartbeats every ``heartbeat_seconds * MF_HEARTBEAT_FRACTION`` while it runs, progress as it goes;
* a result: succeeded with the output, failed with the exception's class and message (never a
  success when the handler raised), or cancelled when a cancel message for the job arrived;
* a malformed job whose token can be read is answered as failed (``MalformedJob``,
  ``UnknownJobType``); one without a readable token cannot be answered and is logged.

The journal (:mod:`onprem_worker.journal`) makes redelivered jobs run once and unacknowledged
results go out again after a restart. Results and heartbeats are published with QoS 1; a result
is acknowledged in the journal when paho reports its PUBACK.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from onprem_worker.config import MqttProtocol, WorkerSettings
from onprem_worker.contracts import (
    CancelMessage,
    Channel,
    HeartbeatMessage,
    InvalidMessage,
    JobMessage,
    JobStatus,
    ProgressMessage,
    ResultMessage,
    is_valid_job_id,
    parse_topic,
    topic,
)
from onprem_worker.jobs import JobCancelled, JobContext, JobHandler
from onprem_worker.journal import Admission, JobJournal, JournalEntry

logger = logging.getLogger("meterflow.onprem_worker")

# MQTT 5 ends a session at disconnect unless told otherwise; a week covers a long site outage
# (brokers cap it: IoT Core at its configured maximum).
SESSION_EXPIRY_SECONDS = 7 * 86_400
RECONNECT_DELAY_SECONDS = (1, 60)  # exponential backoff from the first to the second
HEALTH_TOUCH_SECONDS = 5.0
PROGRESS_MIN_INTERVAL_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 5.0
JOURNAL_RETENTION = timedelta(days=30)
# A cancel can overtake its job (separate topics): remember recent ones so the job never starts.
REMEMBERED_CANCELS = 1_024
MALFORMED_JOB_ID = "malformed-job"
_MAX_ERROR_CHARS = 256
_MAX_CAUSE_CHARS = 32_768
_MAX_TOKEN_CHARS = 8_192


# Aware, unlike meterflow.core.timeutil.utc_now (naive UTC, the HES convention): the worker stamps its
# messages with an offset, and it cannot import meterflow (its image ships without it).
def utc_now() -> datetime:
    return datetime.now(UTC)


def failure(job_id: str, task_token: str, error: str, cause: str, attempt: int = 0) -> ResultMessage:
    return ResultMessage(
        job_id=job_id,
        task_token=task_token,
        attempt=attempt,
        status=JobStatus.FAILED,
        error=error[:_MAX_ERROR_CHARS],
        cause=cause[:_MAX_CAUSE_CHARS],
        finished_at=utc_now(),
    )


def cancellation(job_id: str, task_token: str, reason: str, attempt: int = 0) -> ResultMessage:
    return ResultMessage(
        job_id=job_id,
        task_token=task_token,
        attempt=attempt,
        status=JobStatus.CANCELLED,
        error=JobCancelled.__name__,
        cause=reason[:_MAX_CAUSE_CHARS],
        finished_at=utc_now(),
    )


def readable_job_fields(raw: bytes) -> tuple[str, str] | None:
    """(job_id, task_token) of a message that failed validation, if its token can still be read."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    token = document.get("task_token")
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        return None
    job_id = document.get("job_id")
    return (job_id if is_valid_job_id(job_id) else MALFORMED_JOB_ID), token


class Publisher:
    """Publishes through paho and maps each QoS 1 result's PUBACK back to its journal row.

    paho may report a PUBACK (``on_publish``) before ``publish()`` has returned the message id to
    this thread, and it calls ``on_publish`` holding its own lock, so no lock of ours may be held
    across ``publish()``. Every publish is therefore registered after the fact, and an
    acknowledgement that comes first waits in ``_early`` for its registration.
    """

    def __init__(self, client: mqtt.Client, journal: JobJournal) -> None:
        self._client = client
        self._journal = journal
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, str] | None] = {}  # mid -> result key, None for others
        self._early: dict[int, ReasonCode] = {}
        self._unacknowledged_results = 0
        self._results_settled = threading.Condition(self._lock)

    def publish(
        self, topic_name: str, payload: bytes, qos: int, result_key: tuple[str, str] | None = None
    ) -> None:
        info = self._client.publish(topic_name, payload, qos=qos)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            logger.error("publish to %s refused by the client: %s", topic_name, mqtt.error_string(info.rc))
            return
        if qos == 0 and info.rc is MQTTErrorCode.MQTT_ERR_NO_CONN:
            return  # dropped while offline: QoS 0 is never acknowledged
        # NO_CONN with QoS 1: paho keeps the message and sends it after the reconnect.
        with self._lock:
            if result_key is not None:
                self._unacknowledged_results += 1
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = result_key
            else:
                self._settle(result_key, early)

    def on_publish(self, mid: int, reason_code: ReasonCode) -> None:
        with self._lock:
            if mid not in self._pending:
                self._early[mid] = reason_code
                return
            self._settle(self._pending.pop(mid), reason_code)

    def _settle(self, result_key: tuple[str, str] | None, reason_code: ReasonCode) -> None:
        if result_key is None:
            return
        self._unacknowledged_results -= 1
        self._results_settled.notify_all()
        job_id, digest = result_key
        if reason_code.is_failure:
            # Kept unacknowledged: it goes out again at the next start.
            logger.error("broker refused the result of job %s: %s", job_id, reason_code)
            return
        self._journal.acknowledge(job_id, digest)
        logger.info("result of job %s (token %s) acknowledged", job_id, digest[:12])

    def wait_for_results(self, timeout: float) -> bool:
        """Wait until every published result was acknowledged (or refused); False on timeout."""
        with self._lock:
            return self._results_settled.wait_for(lambda: self._unacknowledged_results <= 0, timeout)


class JobRun:
    """One job in its own thread: heartbeats, progress, then the result."""

    def __init__(self, worker: Worker, job: JobMessage, entry: JournalEntry, handler: JobHandler) -> None:
        self.worker = worker
        self.job = job
        self.entry = entry
        self.handler = handler
        self.cancelled = threading.Event()
        self.cancel_reason = "cancelled"
        self._beating = threading.Event()
        self._last_progress = 0.0
        self.thread = threading.Thread(target=self._run, name=f"job-{job.job_id}", daemon=True)

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self.cancelled.set()

    def _run(self) -> None:
        self.worker.journal.mark_running(self.job.job_id, self.entry.token_sha256)
        heartbeat = threading.Thread(target=self._beat, name=f"heartbeat-{self.job.job_id}", daemon=True)
        heartbeat.start()
        try:
            result = self._execute()
        finally:
            self._beating.set()
            heartbeat.join()
        self.worker.finish(self.entry, result)
        self.worker.forget_run(self)

    def _execute(self) -> ResultMessage:
        job = self.job
        context = JobContext(cancelled=self.cancelled, report_progress=self._progress)
        try:
            output = self.handler(job.payload, context)
            result = ResultMessage(
                job_id=job.job_id,
                task_token=job.task_token,
                attempt=job.attempt,
                status=JobStatus.SUCCEEDED,
                output=output,
                finished_at=utc_now(),
            )
            result.encode()  # an output that cannot be sent fails the job here, not the publish
            logger.info("job %s (%s) succeeded", job.job_id, job.job_type)
            return result
        except JobCancelled:
            if self.worker.stopping.is_set():
                logger.warning("job %s stopped by the worker's shutdown", job.job_id)
                return failure(
                    job.job_id, job.task_token, "WorkerStopped", "the worker shut down mid-job", job.attempt
                )
            logger.info("job %s cancelled: %s", job.job_id, self.cancel_reason)
            return cancellation(job.job_id, job.task_token, self.cancel_reason, job.attempt)
        except Exception as exc:
            logger.warning("job %s (%s) failed", job.job_id, job.job_type, exc_info=True)
            return failure(job.job_id, job.task_token, type(exc).__name__, str(exc) or repr(exc), job.attempt)

    def _beat(self) -> None:
        interval = self.worker.settings.heartbeat_interval(self.job.heartbeat_seconds)
        heartbeat_topic = self.worker.topic(Channel.HEARTBEATS)
        while True:
            beat = HeartbeatMessage(
                job_id=self.job.job_id, task_token=self.job.task_token, attempt=self.job.attempt, at=utc_now()
            )
            self.worker.publisher.publish(heartbeat_topic, beat.encode(), qos=1)
            if self._beating.wait(interval):
                return

    def _progress(self, rows: int, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_progress < PROGRESS_MIN_INTERVAL_SECONDS:
            return
        self._last_progress = now
        message = ProgressMessage(
            job_id=self.job.job_id, attempt=self.job.attempt, fraction=fraction, rows=rows, at=utc_now()
        )
        self.worker.publisher.publish(self.worker.topic(Channel.PROGRESS), message.encode(), qos=0)


class Worker:
    def __init__(
        self, settings: WorkerSettings, handlers: Mapping[str, JobHandler], journal: JobJournal
    ) -> None:
        self.settings = settings
        self.handlers = handlers
        self.journal = journal
        self.stopping = threading.Event()
        self.subscribed = threading.Event()
        self.client = _mqtt_client(settings)
        self.publisher = Publisher(self.client, journal)
        self._runs_lock = threading.Lock()
        self._runs: dict[str, list[JobRun]] = {}
        self._cancelled_early: OrderedDict[str, str] = OrderedDict()
        self._resent_journal = False
        self._health = threading.Thread(target=self._touch_health_file, name="health", daemon=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def topic(self, channel: Channel) -> str:
        return topic(self.settings.tenant, self.settings.worker_id, channel)

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Settle what a previous run left in the journal, then connect (retrying until it can)."""
        pruned = self.journal.prune(JOURNAL_RETENTION)
        if pruned:
            logger.info("journal: forgot %d acknowledged jobs older than %s", pruned, JOURNAL_RETENTION)
        for entry in self.journal.interrupted():
            logger.warning("job %s was cut short by a restart: reporting it failed", entry.job_id)
            cause = "the worker restarted while the job ran; the cloud's retry will run it again"
            self.journal.finish(
                entry.job_id,
                entry.token_sha256,
                failure(entry.job_id, entry.task_token, "WorkerRestarted", cause, entry.attempt).encode(),
            )
        settings = self.settings
        if settings.protocol is MqttProtocol.V5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
            self.client.connect_async(
                settings.broker_host,
                settings.broker_port,
                settings.keepalive_seconds,
                clean_start=False,
                properties=properties,
            )
        else:
            self.client.connect_async(settings.broker_host, settings.broker_port, settings.keepalive_seconds)
        self.client.loop_start()
        self._health.start()

    def stop(self, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop running jobs (reported as WorkerStopped), wait for their results' PUBACKs, disconnect."""
        logger.info("stopping")
        self.stopping.set()
        with self._runs_lock:
            runs = [run for job_runs in self._runs.values() for run in job_runs]
        for run in runs:
            run.cancel("the worker is shutting down")
        deadline = time.monotonic() + grace_seconds
        for run in runs:
            run.thread.join(max(0.0, deadline - time.monotonic()))
        if not self.publisher.wait_for_results(max(0.0, deadline - time.monotonic())):
            logger.warning("stopping with unacknowledged results: they are re-sent at the next start")
        self.client.disconnect()
        self.client.loop_stop()
        self.subscribed.clear()
        self.settings.health_file.unlink(missing_ok=True)
        self.journal.close()
        logger.info("stopped")

    # ------------------------------------------------------------------------------- answers
    def finish(self, entry: JournalEntry, result: ResultMessage) -> None:
        """Journal the result, then publish it: a crash in between re-sends it at the next start."""
        payload = result.encode()
        self.journal.finish(entry.job_id, entry.token_sha256, payload)
        self._publish_result(entry.job_id, entry.token_sha256, payload)

    def forget_run(self, run: JobRun) -> None:
        with self._runs_lock:
            runs = self._runs.get(run.job.job_id, [])
            if run in runs:
                runs.remove(run)
            if not runs:
                self._runs.pop(run.job.job_id, None)

    def _publish_result(self, job_id: str, digest: str, payload: bytes) -> None:
        self.publisher.publish(self.topic(Channel.RESULTS), payload, qos=1, result_key=(job_id, digest))

    def _resend_unacknowledged(self) -> None:
        for entry in self.journal.unacknowledged_results():
            assert entry.result is not None
            logger.info("re-sending the unacknowledged result of job %s", entry.job_id)
            self._publish_result(entry.job_id, entry.token_sha256, entry.result)

    # ------------------------------------------------------------------------------- jobs
    def _receive_job(self, raw: bytes) -> None:
        try:
            job = JobMessage.parse(raw)
        except InvalidMessage as exc:
            self._answer_malformed(raw, exc)
            return
        admission, entry = self.journal.admit(job.job_id, job.task_token, job.job_type, job.attempt)
        if admission is Admission.RESEND:
            logger.info("job %s delivered again after it finished: re-sending its result", job.job_id)
            assert entry.result is not None
            self._publish_result(entry.job_id, entry.token_sha256, entry.result)
            return
        if admission is Admission.IGNORE:
            logger.info("job %s delivered again while it runs: ignored", job.job_id)
            return
        handler = self.handlers.get(job.job_type)
        early_cancel = self._take_early_cancel(job.job_id)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            cause = f"no handler for job_type {job.job_type!r} (this worker runs: {known})"
            self.finish(entry, failure(job.job_id, job.task_token, "UnknownJobType", cause, job.attempt))
        elif early_cancel is not None:
            self.finish(entry, cancellation(job.job_id, job.task_token, early_cancel, job.attempt))
        elif self.stopping.is_set():
            self.finish(
                entry,
                failure(
                    job.job_id, job.task_token, "WorkerStopped", "the worker is shutting down", job.attempt
                ),
            )
        else:
            self._start_run(JobRun(self, job, entry, handler))

    def _start_run(self, run: JobRun) -> None:
        with self._runs_lock:
            self._runs.setdefault(run.job.job_id, []).append(run)
        logger.info(
            "job %s (%s, token %s) started", run.job.job_id, run.job.job_type, run.entry.token_sha256[:12]
        )
        run.thread.start()

    def _answer_malformed(self, raw: bytes, error: InvalidMessage) -> None:
        fields = readable_job_fields(raw)
        if fields is None:
            logger.error("dropped a job message without a readable task token: %s", error)
            return
        job_id, token = fields
        admission, entry = self.journal.admit(job_id, token, "malformed")
        if admission is Admission.RUN:
            logger.warning("job %s is malformed: %s", job_id, error)
            self.finish(entry, failure(job_id, token, "MalformedJob", str(error)))
        elif entry.result is not None:
            self._publish_result(entry.job_id, entry.token_sha256, entry.result)

    def _receive_cancel(self, raw: bytes) -> None:
        try:
            cancel = CancelMessage.parse(raw)
        except InvalidMessage as exc:
            logger.error("dropped a malformed cancel message: %s", exc)
            return
        known = bool(self.journal.entries(cancel.job_id))
        with self._runs_lock:
            runs = list(self._runs.get(cancel.job_id, []))
            if not runs and not known:  # a cancel for a job that already ended changes nothing
                self._cancelled_early[cancel.job_id] = cancel.reason
                while len(self._cancelled_early) > REMEMBERED_CANCELS:
                    self._cancelled_early.popitem(last=False)
        for run in runs:
            run.cancel(cancel.reason)
        logger.info("cancel for job %s (%d running)", cancel.job_id, len(runs))

    def _take_early_cancel(self, job_id: str) -> str | None:
        with self._runs_lock:
            return self._cancelled_early.pop(job_id, None)

    # ------------------------------------------------------------------------------- paho callbacks
    # paho's network thread runs these; an exception escaping one would stop the loop, so none does.
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason_code.is_failure:
                logger.error("broker refused the connection: %s (retrying with backoff)", reason_code)
                return
            # a PUBACK, then a heartbeat and a result: small writes that Nagle's algorithm would hold
            # for the broker's delayed ACK (~40 ms per job)
            connection = client.socket()
            if isinstance(connection, socket.socket | ssl.SSLSocket):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            logger.info(
                "connected to %s:%d (session present: %s)",
                self.settings.broker_host,
                self.settings.broker_port,
                flags.session_present,
            )
            client.subscribe([(self.topic(Channel.JOBS), 1), (self.topic(Channel.CANCEL), 1)])
            if not self._resent_journal:
                self._resent_journal = True
                self._resend_unacknowledged()
        except Exception:
            logger.exception("on_connect failed")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused the subscriptions (%s): check the worker's policy or ACL", refused)
            return
        self.subscribed.set()
        self._write_health_file()
        logger.info("ready: subscribed to %s and %s", self.topic(Channel.JOBS), self.topic(Channel.CANCEL))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        if not self.stopping.is_set():
            logger.warning("disconnected (%s): reconnecting with backoff", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Returning from here lets paho send the PUBACK: the journal has the job by then.
        try:
            _, _, channel = parse_topic(message.topic)
            if channel is Channel.JOBS:
                self._receive_job(bytes(message.payload))
            elif channel is Channel.CANCEL:
                self._receive_cancel(bytes(message.payload))
        except Exception:
            logger.exception("failed to handle a message on %s", message.topic)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            self.publisher.on_publish(mid, reason_code)
        except Exception:
            logger.exception("failed to record the acknowledgement of message %d", mid)

    # ------------------------------------------------------------------------------- health
    def _touch_health_file(self) -> None:
        while not self.stopping.wait(HEALTH_TOUCH_SECONDS):
            if self.subscribed.is_set():
                self._write_health_file()

    def _write_health_file(self) -> None:
        try:
            self.settings.health_file.parent.mkdir(parents=True, exist_ok=True)
            self.settings.health_file.touch()
        except OSError:
            logger.exception("cannot touch the health file %s", self.settings.health_file)


def _mqtt_client(settings: WorkerSettings) -> mqtt.Client:
    if settings.protocol is MqttProtocol.V5:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=settings.worker_id, protocol=MQTTProtocolVersion.MQTTv5
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.worker_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=False,
        )
    if settings.tls is not None:
        client.tls_set_context(settings.tls.ssl_context())
    client.reconnect_delay_set(*RECONNECT_DELAY_SECONDS)
    client.max_inflight_messages_set(100)
    client.enable_logger(logging.getLogger("meterflow.onprem_worker.mqtt"))
    return client
