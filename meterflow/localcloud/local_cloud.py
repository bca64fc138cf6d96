"""The local cloud: the whole Meterflow stack on one machine, no AWS account needed.

``LocalCloud.start()`` starts moto server in-process on 127.0.0.1 with Step Functions execution
on (or uses the cloud that ``AWS_ENDPOINT_URL`` already names, such as LocalStack), creates every
resource of :mod:`meterflow.localcloud.stack`, starts the worker host (the stand-in for Lambda's SQS event
source mappings), serves the Chalice app over HTTP and the export bucket over SFTP.

Once up, it writes the settings it gives its workers and API to ``<state_dir>/cloud-env.json``, from
which :func:`write_chalice_stage` fills the ``local`` stage of ``chalice_app/.chalice/config.json``
(``meterflow chalice-config``), so ``chalice local --stage local`` serves the same API.
``stop()`` ends the supervisors first, then the workers, then the servers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from meterflow.aws.clients import AwsClients, aws_clients
from meterflow.bridge.settings import BridgeSettings
from meterflow.core.timeutil import format_hes_time
from meterflow.hes.domain.fleet import FleetConfig
from meterflow.hes.settings import HesSettings
from meterflow.lake.settings import LakeSettings
from meterflow.localcloud.bootstrap import bootstrap
from meterflow.localcloud.handlers import RegisteredHandlers, registered_handlers
from meterflow.localcloud.mqtt_broker import (
    BrokerIdentity,
    LocalBroker,
    MqttClientOptions,
    mqtt_client_options,
    start_local_broker,
)
from meterflow.localcloud.net import free_port
from meterflow.localcloud.onsite_worker import admit_worker
from meterflow.localcloud.sftp_server import S3SftpServer
from meterflow.localcloud.site_bridge import SiteMessageBridge
from meterflow.localcloud.ssh_keys import generate_ssh_keypair
from meterflow.localcloud.stack import BridgeTuning, ExportTuning, LakeTuning, StackSpec, stack_spec
from meterflow.localcloud.worker_host import QueueBinding, WorkerHost

logger = logging.getLogger("meterflow.localcloud")

SFTP_USER = "sftp-user"
_LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "meterflow-local", "AWS_SECRET_ACCESS_KEY": "meterflow-local"}
CLOUD_ENV_FILE = "cloud-env.json"
# Relative to the repository root, where `make up` runs.
DEFAULT_CHALICE_CONFIG = Path("chalice_app") / ".chalice" / "config.json"
CHALICE_STAGE = "local"
# Settings that are paths: a Chalice stage holds them relative to its project directory, where
# `chalice local` runs, so the committed stage works in every checkout.
_PATH_VARIABLES = ("MF_BRIDGE_MQTT_CA", "MF_BRIDGE_MQTT_CERT", "MF_BRIDGE_MQTT_KEY")
# Runtime settings that are not the stack's: `chalice local` keeps its own log level.
_NOT_STAGE_VARIABLES = ("MF_LOG_LEVEL",)


def lake_settings_for(spec: StackSpec, lake_jobs_queue_url: str) -> LakeSettings:
    """The lake settings of a stack, derived from its resource definition (as Terraform does)."""
    return LakeSettings(
        region=spec.region,
        inbound_bucket=spec.bucket("inbound").name,
        integrated_bucket=spec.bucket("integrated").name,
        lake_jobs_queue_url=lake_jobs_queue_url,
        integrations_table=spec.table("integrations").name,
        lake_files_table=spec.table("lake_files").name,
        lake_ingest_state_machine_arn=spec.state_machine_arn("lake_ingest"),
        input_adapter_state_machine_arn=spec.state_machine_arn("input_adapter"),
        alerts_topic_arn=spec.topic_arn("alerts"),
        glue_database=spec.glue_database,
        athena_workgroup=spec.athena_workgroup,
        query_engine="duckdb",
    )


class CloudNotRunning(RuntimeError):
    """No running local cloud has written its settings to the state directory."""


def read_cloud_env(state_dir: Path) -> dict[str, str]:
    """The settings a running local cloud wrote to ``state_dir`` (what its workers and API are given)."""
    path = state_dir / CLOUD_ENV_FILE
    try:
        written = json.loads(path.read_text())
    except FileNotFoundError:
        raise CloudNotRunning(f"no local cloud is running with state directory {state_dir}") from None
    try:
        os.kill(int(written["pid"]), 0)
    except ProcessLookupError:
        raise CloudNotRunning(f"the local cloud that wrote {path} (pid {written['pid']}) is gone") from None
    except PermissionError:
        pass  # alive, another user's
    return dict(written["environment"])


def chalice_stage_environment(runtime_env: Mapping[str, str], project_dir: Path) -> dict[str, str]:
    """A Chalice stage's ``environment_variables`` for a local cloud's runtime settings.

    Its ``MF_*`` and ``AWS_*`` variables (endpoint, region, credentials), sorted; paths relative to
    the Chalice project directory, where ``chalice local`` runs.
    """
    stage: dict[str, str] = {}
    for key, value in sorted(runtime_env.items()):
        if not key.startswith(("MF_", "AWS_")) or key in _NOT_STAGE_VARIABLES:
            continue
        if key in _PATH_VARIABLES and value:
            value = os.path.relpath(Path(value).resolve(), project_dir.resolve())
        stage[key] = value
    return stage


def chalice_stage(config_path: Path, stage: str = CHALICE_STAGE) -> dict[str, str]:
    """The ``environment_variables`` of one stage of a Chalice ``config.json``."""
    config = json.loads(config_path.read_text())
    return dict(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))


def write_chalice_stage(
    config_path: Path, environment: Mapping[str, str], stage: str = CHALICE_STAGE
) -> bool:
    """Set one stage's ``environment_variables``, the rest of the file unchanged; False if already so."""
    config = json.loads(config_path.read_text())
    variables = config.setdefault("stages", {}).setdefault(stage, {})
    if variables.get("environment_variables") == dict(environment):
        return False
    variables["environment_variables"] = dict(environment)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return True


@dataclass(frozen=True)
class LocalCloudConfig:
    host: str = "127.0.0.1"
    moto_port: int = 5050
    api_port: int = 8000
    sftp_port: int = 2222
    # None: the broker picks a free port.
    mqtt_port: int | None = 8883
    stack_name: str = "meterflow"
    region: str = "us-east-1"
    state_dir: Path = Path(".meterflow")
    fleet: FleetConfig = field(default_factory=FleetConfig)
    tuning: ExportTuning = field(default_factory=ExportTuning)
    export_workers: int = 2
    export_chunk_records: int = 120_000
    heartbeat_interval_seconds: float = 15.0
    fixed_now: datetime | None = None
    lake: LakeTuning = field(default_factory=LakeTuning)
    bridge: BridgeTuning = field(default_factory=BridgeTuning)
    lake_workers: int = 2
    late_threshold_minutes: int = 60
    range_min_bytes: int = 16 * 1024 * 1024
    # The local stand-in for the EventBridge schedule: how often due integrations are started.
    scheduler_interval_seconds: float = 60.0
    # None: embedded moto server. A URL: an existing cloud (LocalStack, or AWS itself).
    endpoint_url: str | None = None

    def with_free_ports(self) -> LocalCloudConfig:
        return replace(
            self, moto_port=free_port(), api_port=free_port(), sftp_port=free_port(), mqtt_port=None
        )


class LocalCloud:
    def __init__(self, config: LocalCloudConfig) -> None:
        self.config = config
        self.embedded = config.endpoint_url is None
        self.endpoint_url = config.endpoint_url or f"http://{config.host}:{config.moto_port}"
        self._moto: Any = None
        self._api_server: Any = None
        self._api_thread: threading.Thread | None = None
        self.sftp: S3SftpServer | None = None
        self.workers: WorkerHost | None = None
        self.clients: AwsClients | None = None
        self.spec: StackSpec | None = None
        self.settings: HesSettings | None = None
        self.known_hosts_path = config.state_dir / "known_hosts"
        self.lake_settings: LakeSettings | None = None
        self._scheduler: threading.Thread | None = None
        self._scheduler_stop = threading.Event()
        self.broker: LocalBroker | None = None
        self.bridge_settings: BridgeSettings | None = None
        self._site_bridge: SiteMessageBridge | None = None
        # What the workers and the API are given: every MF_* setting and the AWS endpoint variables.
        self.runtime_env: dict[str, str] = {}
        # What the app serves, read once it has its environment (queues and schedules).
        self.handlers: RegisteredHandlers | None = None

    # --------------------------------------------------------------------------------- lifecycle
    def start(self) -> LocalCloud:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        environment = self.aws_environment()
        os.environ.update(environment)
        if self.embedded:
            self._start_moto()

        self.clients = aws_clients(config.region)
        self.spec = self.stack_spec_for(self.clients_account_id())
        user_key = generate_ssh_keypair()
        queue_urls = bootstrap(self.spec, self.clients, user_key.private_pem)
        self._start_broker()
        assert self.broker is not None
        runtime_env = self.runtime_environment(
            queue_urls, mqtt_client_options(BrokerIdentity.bridge(), self.broker)
        )
        os.environ.update(runtime_env)
        self.runtime_env = runtime_env

        self.handlers = registered_handlers({**os.environ, **runtime_env})
        self.workers = WorkerHost(self._bindings(queue_urls), {**os.environ, **runtime_env})
        self.workers.start()
        self.workers.wait_ready()
        self._start_api()
        self._start_sftp(user_key.public_openssh)
        self._start_scheduler()
        self._start_site_bridge(queue_urls["site_messages"])
        self._write_cloud_env()
        return self

    @property
    def cloud_env_path(self) -> Path:
        return self.config.state_dir / CLOUD_ENV_FILE

    def _write_cloud_env(self) -> None:
        """The settings of this cloud, for `meterflow chalice-config` in another shell (paths absolute)."""
        environment = {
            key: str(Path(value).resolve()) if key in _PATH_VARIABLES and value else value
            for key, value in self.runtime_env.items()
        }
        self.cloud_env_path.write_text(
            json.dumps({"pid": os.getpid(), "environment": environment}, indent=2, sort_keys=True) + "\n"
        )

    def aws_environment(self) -> dict[str, str]:
        """The AWS SDK's variables for this cloud: endpoint, region and, for moto, credentials."""
        environment = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
            # The recorder needs a daemon and a Lambda context; locally the SDK's own switch turns it off.
            "AWS_XRAY_SDK_ENABLED": "false",
            "MF_LOG_LEVEL": os.environ.get("MF_LOG_LEVEL", "WARNING"),
        }
        if self.embedded:
            environment.update(_LOCAL_CREDENTIALS)
            # moto's Step Functions runner calls its own services at http://localhost:$MOTO_PORT.
            environment["MOTO_PORT"] = str(self.config.moto_port)
        return environment

    def stack_spec_for(self, account_id: str) -> StackSpec:
        config = self.config
        return stack_spec(
            config.stack_name,
            config.region,
            account_id,
            config.tuning,
            queue_endpoint=self.endpoint_url,
            lake=config.lake,
            bridge=config.bridge,
        )

    def runtime_environment(self, queue_urls: Mapping[str, str], bridge: MqttClientOptions) -> dict[str, str]:
        """Every variable the workers and the API get (and ``settings``, ``lake_settings``...).

        A function of the configuration, the stack, its queue URLs and the bridge's broker options
        only, so the ``local`` Chalice stage of the default stack can be checked without starting it.
        """
        config, spec = self.config, self.spec
        assert spec is not None
        self.settings = HesSettings(
            stack_name=config.stack_name,
            region=config.region,
            file_requests_table=spec.table("file_requests").name,
            file_requests_queue_url=queue_urls["file_requests"],
            export_jobs_queue_url=queue_urls["export_jobs"],
            exports_bucket=spec.bucket("hes_exports").name,
            export_state_machine_arn=spec.state_machine_arn("hes_export"),
            **HesSettings.fleet_fields(config.fleet),
            export_chunk_records=config.export_chunk_records,
            heartbeat_interval_seconds=config.heartbeat_interval_seconds,
            fixed_now=config.fixed_now,
        )
        self.lake_settings = lake_settings_for(spec, queue_urls["lake_jobs"]).model_copy(
            update={
                "late_threshold_minutes": config.late_threshold_minutes,
                "range_min_bytes": config.range_min_bytes,
                "heartbeat_interval_seconds": config.heartbeat_interval_seconds,
                "fixed_now": config.fixed_now,
            }
        )
        # What the bridge publishes site jobs with: the broker sites connect to (IoT Core's role).
        self.bridge_settings = BridgeSettings(
            region=spec.region,
            bridge_jobs_table=spec.table("bridge_jobs").name,
            backfill_state_machine_arn=spec.state_machine_arn("historian_backfill"),
            inbound_bucket=spec.bucket("inbound").name,
            site_publish="mqtt",
            mqtt_host=bridge.host,
            mqtt_port=bridge.port,
            mqtt_ca=str(bridge.ca_path),
            mqtt_cert=str(bridge.cert_path),
            mqtt_key=str(bridge.key_path),
            mqtt_client_id=bridge.client_id,
            heartbeat_interval_seconds=config.heartbeat_interval_seconds,
        )
        return {
            **self.aws_environment(),
            **self.settings.to_env(),
            **self.lake_settings.to_env(),
            **self.bridge_settings.to_env(),
            "MF_HES_FILE_REQUESTS_QUEUE_NAME": spec.queue("file_requests").name,
            "MF_HES_EXPORT_JOBS_QUEUE_NAME": spec.queue("export_jobs").name,
            "MF_LAKE_JOBS_QUEUE_NAME": spec.queue("lake_jobs").name,
            "MF_LAKE_UNCOMPRESSED_OBJECTS_QUEUE_NAME": spec.queue("uncompressed_objects").name,
            "MF_LAKE_LATE_READS_QUEUE_NAME": spec.queue("late_reads").name,
            "MF_BRIDGE_JOBS_QUEUE_NAME": spec.queue("bridge_jobs").name,
            "MF_BRIDGE_SITE_DISPATCH_QUEUE_NAME": spec.queue("site_dispatch").name,
            "MF_BRIDGE_SITE_MESSAGES_QUEUE_NAME": spec.queue("site_messages").name,
        }

    def clients_account_id(self) -> str:
        assert self.clients is not None
        if self.embedded:
            return "123456789012"  # moto's default account
        import boto3

        return str(boto3.client("sts", region_name=self.config.region).get_caller_identity()["Account"])

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from meterflow.localcloud import moto_fidelity

        moto_fidelity.apply()
        # moto spools objects above ~5 MB to temporary files and rereads the whole file for every
        # ranged GET; the lake reads ranges of large objects, so keep objects in memory instead.
        os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(2**31))
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        # moto logs a Choice rule's IsPresent test on an absent path as an ERROR; it is a normal outcome
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
        self._moto = ThreadedMotoServer(
            ip_address=self.config.host, port=self.config.moto_port, verbose=False
        )
        self._moto.start()
        response = requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        )
        response.raise_for_status()

    def _bindings(self, queue_urls: dict[str, str]) -> list[QueueBinding]:
        """One binding per queue the app handles; a handler for a queue the stack lacks is an error."""
        assert self.spec is not None
        spec = self.spec
        assert self.handlers is not None
        handlers = self.handlers.queue_handlers
        by_name = {queue.name: queue for queue in spec.queues}
        if unknown := sorted(set(handlers) - set(by_name)):
            raise RuntimeError(f"the app handles queues the stack does not declare: {', '.join(unknown)}")
        processes = {
            "lake_jobs": self.config.lake_workers,
            "late_reads": self.config.lake_workers,
            "export_jobs": self.config.export_workers,
        }
        return [
            QueueBinding(
                queue.key.replace("_", "-"),
                queue_urls[queue.key],
                f"arn:aws:sqs:{spec.region}:{spec.account_id}:{queue.name}",
                handlers[queue.name],
                processes=processes.get(queue.key, 1),
            )
            for queue in spec.queues
            if queue.name in handlers
        ]

    def _start_scheduler(self) -> None:
        """Calls the scheduled handlers (EventBridge schedules in AWS) every interval."""

        def tick() -> None:
            while not self._scheduler_stop.wait(self.config.scheduler_interval_seconds):
                try:
                    self.run_scheduler_once()
                except Exception:
                    logger.exception("scheduler tick failed")

        self._scheduler = threading.Thread(target=tick, name="scheduler", daemon=True)
        self._scheduler.start()

    def run_scheduler_once(self) -> None:
        """One tick of every schedule now, as EventBridge would deliver it."""
        assert self.handlers is not None
        for handler in self.handlers.scheduled_handlers():
            handler(self._scheduled_event(), None)

    def _scheduled_event(self) -> dict[str, Any]:
        import uuid

        assert self.spec is not None
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.spec.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.spec.region,
            "resources": [f"arn:aws:events:{self.spec.region}:{self.spec.account_id}:rule/scheduler"],
            "detail": {},
        }

    def _start_api(self) -> None:
        from chalice.config import Config
        from chalice.local import ChaliceRequestHandler, LocalDevServer

        from chalice_app.app import app

        class QuietRequestHandler(ChaliceRequestHandler):
            # Headers and body go out in separate writes; without this, delayed ACKs add ~40 ms a request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("api %s", format % args)

        self._api_server = LocalDevServer(
            app,
            Config.create(chalice_stage="local"),
            self.config.host,
            self.config.api_port,
            handler_cls=QuietRequestHandler,
        )
        self._api_thread = threading.Thread(
            target=self._api_server.server.serve_forever, name="api", daemon=True
        )
        self._api_thread.start()

    def _start_sftp(self, public_key: str) -> None:
        assert self.clients is not None and self.spec is not None
        self.sftp = S3SftpServer(
            self.clients.s3,
            bucket=self.spec.bucket("hes_exports").name,
            root_prefix="exports",
            username=SFTP_USER,
            authorized_public_keys=[public_key],
            host_key_path=self.config.state_dir / "ssh_host_key",
            host=self.config.host,
            port=self.config.sftp_port,
        )
        self.sftp.start()
        self.sftp.write_known_hosts(self.known_hosts_path)

    def _start_broker(self) -> None:
        """The MQTT broker sites connect to (IoT Core's role)."""
        self.broker = start_local_broker(
            self.config.state_dir / "mqtt", [BrokerIdentity.bridge()], port=self.config.mqtt_port
        )

    def _start_site_bridge(self, site_messages_queue_url: str) -> None:
        """What the IoT topic rules do in AWS: site messages from the broker onto the SQS queue."""
        assert self.clients is not None and self.broker is not None
        options = mqtt_client_options(BrokerIdentity.bridge(), self.broker, connection="site-bridge")
        self._site_bridge = SiteMessageBridge(
            self.clients.sqs,
            site_messages_queue_url,
            options.host,
            options.port,
            str(options.ca_path),
            str(options.cert_path),
            str(options.key_path),
            client_id=options.client_id,
        ).start()

    def provision_site(self, tenant: str, worker: str) -> dict[str, str]:
        """Admit one on-premises worker: a certificate for it and ACL entries for its own topics only.

        Returns the worker's connection settings (``onprem_worker`` environment variables); its
        journal, historian and health file are the site's to choose.
        """
        assert self.broker is not None
        return admit_worker(self.broker, tenant, worker)

    def stop(self, report: Callable[[str], None] | None = None) -> None:
        """Stop the scheduler and the worker host (supervisor, then workers), then the servers.

        ``report`` is called with one line per component stopped. A component that fails to stop is
        reported and skipped, so the others still stop; each step is bounded (a few seconds).
        """
        steps: list[tuple[str, Callable[[], str]]] = [
            ("scheduler", self._stop_scheduler),
            ("worker host", self._stop_workers),
            ("API", self._stop_api),
            ("SFTP server", self._stop_sftp),
            ("site bridge", self._stop_site_bridge),
            ("MQTT broker", self._stop_broker),
            ("moto server", self._stop_moto),
        ]
        for component, step in steps:
            started = time.monotonic()
            try:
                detail = step()
            except Exception as error:
                logger.debug("stopping the %s failed", component, exc_info=True)
                line = f"could not stop the {component}: {type(error).__name__}: {error}"
            else:
                if not detail:
                    continue  # never started
                line = f"stopped {component} ({detail}) in {time.monotonic() - started:.1f} s"
            if report is not None:
                report(line)
        self.cloud_env_path.unlink(missing_ok=True)

    def _stop_scheduler(self) -> str:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return ""
        self._scheduler_stop.set()
        scheduler.join(5)  # a tick in progress finishes its boto3 calls
        return f"every {self.config.scheduler_interval_seconds:g} s"

    def _stop_workers(self) -> str:
        workers, self.workers = self.workers, None
        if workers is None:
            return ""
        stopped = workers.stop()
        signalled = ((stopped.terminated, "terminated after the grace period"), (stopped.killed, "killed"))
        extra = "".join(f", {count} {what}" for count, what in signalled if count)
        return f"{stopped.queues} queues, {stopped.processes} processes{extra}"

    def _stop_api(self) -> str:
        server, self._api_server = self._api_server, None
        if server is None:
            return ""
        server.shutdown()
        server.server.server_close()
        return self.api_url

    def _stop_sftp(self) -> str:
        sftp = self.sftp
        if sftp is None or not sftp.running:
            return ""
        sftp.stop()
        return f"{self.config.host}:{sftp.port}"

    def _stop_site_bridge(self) -> str:
        bridge, self._site_bridge = self._site_bridge, None
        if bridge is None:
            return ""
        bridge.stop()
        return "MQTT to SQS"

    def _stop_broker(self) -> str:
        broker = self.broker
        if broker is None:
            return ""
        try:
            where = f"{broker.kind} on {broker.host}:{broker.port}"
        except RuntimeError:
            return ""  # not started
        broker.stop()
        return where

    def _stop_moto(self) -> str:
        moto, self._moto = self._moto, None
        if moto is None:
            return ""
        moto.stop()
        return self.endpoint_url

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------------- facts
    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.api_port}"

    def _broker_lines(self) -> list[str]:
        broker = self.broker
        if broker is None:
            return []
        return [f"  MQTT broker       {broker.kind} on {broker.host}:{broker.port} (mutual TLS)"]

    def describe(self) -> str:
        assert self.spec is not None and self.sftp is not None
        secret = self.spec.secret("sftp_private_key").name
        fleet = self.config.fleet
        lines = [
            "Meterflow local cloud is up.",
            f"  API (Chalice)     {self.api_url}   e.g. {self.api_url}/readings?start_date="
            f"{format_hes_time(fleet.start).replace(' ', '%20')}&page_size=5",
            f"  SFTP              sftp -i private.pem -P {self.sftp.port} -o UserKnownHostsFile="
            f"{self.known_hosts_path.resolve()} {SFTP_USER}@{self.config.host}",
            f"  AWS endpoint      {self.endpoint_url} "
            f"({'embedded moto server' if self.embedded else 'external'})",
            f"  Fleet             {fleet.meter_count:,} meters every {fleet.interval_minutes} min "
            f"from {format_hes_time(fleet.start)} (seed {fleet.seed})",
            *self._broker_lines(),
            "",
            "For aws / boto3 in another shell:",
            # aws CLI v1 reads only AWS_DEFAULT_REGION; boto3 and CLI v2 read either
            f"  export AWS_ENDPOINT_URL={self.endpoint_url} AWS_REGION={self.config.region} "
            f"AWS_DEFAULT_REGION={self.config.region}",
        ]
        if self.embedded:
            lines.append("  export AWS_ACCESS_KEY_ID=meterflow-local AWS_SECRET_ACCESS_KEY=meterflow-local")
        lines += [
            f"  aws secretsmanager get-secret-value --secret-id {secret} --output text --query SecretString "
            "> private.pem && chmod 400 private.pem",
        ]
        return "\n".join(lines)
