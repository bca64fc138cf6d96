"""``meterflow``: run the local cloud (``up``), the end-to-end demo (``demo``), list ground truth.

``meterflow up`` serves until SIGINT (Ctrl-C) or SIGTERM, then stops the supervisors, the workers
and the servers in that order, one line each, and exits 0: a requested stop is a success.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from meterflow.core.timeutil import parse_hes_time
from meterflow.hes.domain.fleet import FleetConfig
from meterflow.localcloud.local_cloud import (
    CHALICE_STAGE,
    DEFAULT_CHALICE_CONFIG,
    CloudNotRunning,
    LocalCloud,
    LocalCloudConfig,
    chalice_stage,
    chalice_stage_environment,
    read_cloud_env,
    write_chalice_stage,
)
from meterflow.localcloud.stack import LakeTuning

if TYPE_CHECKING:
    from meterflow.lake.wiring import LakeServices


def _cloud_config(args: argparse.Namespace) -> LocalCloudConfig:
    import os

    return LocalCloudConfig(
        moto_port=args.moto_port,
        api_port=args.api_port,
        sftp_port=args.sftp_port,
        mqtt_port=args.mqtt_port or None,
        stack_name=args.stack_name,
        state_dir=Path(args.state_dir),
        fleet=FleetConfig(meter_count=args.meters, seed=args.seed),
        export_workers=args.workers,
        # locally a status check is cheap: poll every 2 s instead of the deployed 10 s
        lake=LakeTuning(hes_poll_interval_seconds=2, ingest_poll_interval_seconds=2),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
    )


def _add_cloud_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-port", type=int, default=8000, help="HTTP port of the API (default 8000)")
    parser.add_argument("--sftp-port", type=int, default=2222, help="SFTP port (default 2222)")
    parser.add_argument(
        "--moto-port", type=int, default=5050, help="port of the embedded moto server (default 5050)"
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=8883, help="MQTT (TLS) port of the broker (default 8883; 0: any)"
    )
    parser.add_argument("--stack-name", default="meterflow", help="prefix of every resource name")
    parser.add_argument("--state-dir", default=".meterflow", help="where host keys and known_hosts live")
    parser.add_argument("--meters", type=int, default=10_000, help="fleet size (default 10,000)")
    parser.add_argument("--seed", type=int, default=20_230_227, help="fleet seed: same seed, same readings")
    parser.add_argument("--workers", type=int, default=2, help="export worker processes (default 2)")


def _chalice_local_hint(cloud: LocalCloud) -> str:
    config = DEFAULT_CHALICE_CONFIG
    if not config.is_file():
        return ""
    chalice = Path(sys.executable).with_name("chalice")
    binary = "chalice" if shutil.which("chalice") == str(chalice) or not chalice.exists() else chalice
    command = f"cd {config.parent.parent} && {binary} local --stage {CHALICE_STAGE} --port 8001"
    wanted = chalice_stage_environment(cloud.runtime_env, config.parent.parent)
    lines = ["", "For `chalice local` (the same API, reloaded on every edit) in another shell:"]
    if chalice_stage(config) != wanted:
        lines.append(
            f"  meterflow chalice-config --state-dir {cloud.config.state_dir}   # {config} holds the "
            f"default stack's {CHALICE_STAGE} stage; this writes this cloud's (do not commit it)"
        )
    return "\n".join([*lines, f"  {command}"])


def cmd_up(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; then stop everything in order and exit 0."""
    cloud = LocalCloud(_cloud_config(args))
    stopping = threading.Event()
    received: list[str] = []

    def interrupt_start(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    def request_stop(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stopping.set()  # a second signal while stopping changes nothing: the stop is bounded

    started = time.monotonic()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt_start)
    try:
        cloud.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, request_stop)
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, request_stop)
        print(f"\n{received[0] if received else 'SIGINT'} while starting: stopping...", flush=True)
    except BaseException:
        cloud.stop()  # what did start must not outlive the error
        raise
    else:
        print(cloud.describe(), flush=True)
        hint = _chalice_local_hint(cloud)
        if hint:
            print(hint, flush=True)
        print(f"\nUp in {time.monotonic() - started:.0f} s. Press Ctrl-C to stop.", flush=True)
        while not stopping.wait(1):
            pass
        print(f"\n{received[0]}: stopping...", flush=True)
    stop_started = time.monotonic()
    cloud.stop(report=lambda line: print(f"  {line}", flush=True))
    print(f"Stopped in {time.monotonic() - stop_started:.1f} s.", flush=True)
    return 0


def cmd_chalice_config(args: argparse.Namespace) -> int:
    """Write the running local cloud's settings into the ``local`` stage of the Chalice config."""
    config = Path(args.config)
    if not config.is_file():
        print(
            f"no Chalice config at {config}: run this from the repository root or pass --config",
            file=sys.stderr,
        )
        return 2
    try:
        environment = chalice_stage_environment(read_cloud_env(Path(args.state_dir)), config.parent.parent)
    except CloudNotRunning as error:
        print(f"{error}: start it with `make up` (or `meterflow up --state-dir ...`)", file=sys.stderr)
        return 2
    current = chalice_stage(config, args.stage)
    changed = sorted(
        key for key in environment.keys() | current.keys() if current.get(key) != environment.get(key)
    )
    if args.check:
        if changed:
            print(f"the {args.stage} stage of {config} differs from the running cloud: {', '.join(changed)}")
            return 1
        print(f"the {args.stage} stage of {config} matches the running cloud")
        return 0
    if write_chalice_stage(config, environment, args.stage):
        print(f"rewrote the {args.stage} stage of {config}: {', '.join(changed)}")
    else:
        print(f"the {args.stage} stage of {config} already matches the running cloud")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from meterflow.localcloud.demo import run_bridge_demo, run_demo, run_lake_demo

    started = time.monotonic()
    with LocalCloud(_cloud_config(args)) as cloud:
        print(cloud.describe(), flush=True)
        print(flush=True)
        summary = run_demo(cloud, Path(args.download_dir), args.export_hours)
        print(summary, flush=True)
        print(run_lake_demo(cloud), flush=True)
        print(run_bridge_demo(cloud), flush=True)
    print(
        f"\nDemo finished in {time.monotonic() - started:.1f} s; the local cloud is stopped "
        "(`make up` keeps it serving).",
        flush=True,
    )
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.hes.domain.truth import ground_truth

    fleet = Fleet(FleetConfig(meter_count=args.meters, seed=args.seed))
    events = ground_truth(
        fleet,
        parse_hes_time(args.start_date, "start_date"),
        parse_hes_time(args.end_date, "end_date"),
        kinds=set(args.kind) if args.kind else None,
    )
    import pyarrow.csv as pa_csv

    pa_csv.write_csv(events, sys.stdout.buffer)
    return 0


def _lake(args: argparse.Namespace) -> LakeServices:
    """Lake services for the stack named on the command line, in the cloud AWS_ENDPOINT_URL names."""
    import os

    import boto3

    from meterflow.lake.wiring import build_lake_services
    from meterflow.localcloud.local_cloud import lake_settings_for
    from meterflow.localcloud.stack import stack_spec

    region = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "AWS_ACCESS_KEY_ID" not in os.environ:
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": "meterflow-local", "AWS_SECRET_ACCESS_KEY": "meterflow-local"}
        )
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    spec = stack_spec(args.stack_name, region, account, queue_endpoint=endpoint)
    settings = lake_settings_for(spec, spec.queue_url("lake_jobs", endpoint))
    if args.engine:
        settings = settings.model_copy(update={"query_engine": args.engine})
    return build_lake_services(settings)


def cmd_lake_query(args: argparse.Namespace) -> int:
    import json

    from meterflow.core.errors import DomainError
    from meterflow.lake.domain.queries import run_named_query

    params = dict(item.split("=", 1) for item in args.param)
    lake = _lake(args)
    try:
        answer = run_named_query(args.name, params, lake.query_engine())
    except DomainError as error:
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    return 0


def cmd_lake_topology(args: argparse.Namespace) -> int:
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.lake.domain.dataflows import publish_topology

    lake = _lake(args)
    fleet = Fleet(FleetConfig(meter_count=args.meters, seed=args.seed))
    print(publish_topology(fleet, lake.integrated))
    return 0


def cmd_lake_weather(args: argparse.Namespace) -> int:
    from meterflow.lake.domain.dataflows import publish_weather
    from meterflow.lake.domain.weather_source import SimulatedWeather

    lake = _lake(args)
    start, end = parse_hes_time(args.start, "start"), parse_hes_time(args.end, "end")
    print(publish_weather(SimulatedWeather(args.seed), start, end, lake.integrated))
    return 0


def cmd_lake_london(args: argparse.Namespace) -> int:
    from meterflow.core.timeutil import utc_now
    from meterflow.lake.domain.dataflows import land_london_file

    lake = _lake(args)
    path = Path(args.file)
    landed = land_london_file(path.name, path.read_bytes(), lake.inbound, lake.integrated, utc_now())
    print(landed)
    return 0


def cmd_lake_integrations(args: argparse.Namespace) -> int:
    import json

    lake = _lake(args)
    for integration in lake.integrations.all():
        print(json.dumps(integration.model_dump(exclude={"sftp_host_key"})))
    return 0


def cmd_lake_retry(args: argparse.Namespace) -> int:
    """A failed integration keeps its window; retrying sets it idle so the scheduler picks it up."""
    lake = _lake(args)
    if not lake.integrations.reset(args.integration_id):
        print(f"{args.integration_id} is not a failed integration", file=sys.stderr)
        return 2
    print(f"{args.integration_id} is idle again; the next scheduler tick retries its window")
    return 0


def _add_lake_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lake = commands.add_parser(
        "lake", help="the data lake of a running stack (AWS_ENDPOINT_URL names the cloud)"
    )
    lake.add_argument("--stack-name", default="meterflow")
    lake.add_argument("--engine", choices=["duckdb", "athena"], help="query engine (default duckdb)")
    actions = lake.add_subparsers(dest="lake_command", required=True)
    query = actions.add_parser("query", help="run a named query and print its rows as JSON")
    query.add_argument("name")
    query.add_argument("-p", "--param", action="append", default=[], help="parameter as name=value")
    query.set_defaults(func=cmd_lake_query)
    topology = actions.add_parser("topology", help="publish the fleet's grid topology under topology/")
    topology.add_argument("--meters", type=int, default=10_000)
    topology.add_argument("--seed", type=int, default=20_230_227)
    topology.set_defaults(func=cmd_lake_topology)
    weather = actions.add_parser("weather", help="publish hourly weather under weather/date=")
    weather.add_argument("--start", required=True)
    weather.add_argument("--end", required=True)
    weather.add_argument("--seed", type=int, default=20_230_227)
    weather.set_defaults(func=cmd_lake_weather)
    london = actions.add_parser("london", help="land a London LCL CSV file for ingestion")
    london.add_argument("file")
    london.set_defaults(func=cmd_lake_london)
    listing = actions.add_parser("integrations", help="list the input-adapter integrations as JSON lines")
    listing.set_defaults(func=cmd_lake_integrations)
    retry = actions.add_parser("retry", help="set a failed integration back to idle")
    retry.add_argument("integration_id")
    retry.set_defaults(func=cmd_lake_retry)


def cmd_historian_seed(args: argparse.Namespace) -> int:
    from meterflow.hes.domain.fleet import Fleet
    from meterflow.localcloud.historian_seed import seed_historian

    fleet = Fleet(FleetConfig(meter_count=args.meters, seed=args.seed))
    started = time.monotonic()
    rows = seed_historian(
        args.url, fleet, parse_hes_time(args.start, "start"), parse_hes_time(args.end, "end")
    )
    print(f"{rows:,} readings written to {args.url.split('://', 1)[0]} in {time.monotonic() - started:.1f} s")
    return 0


def cmd_sftp_rotate_key(args: argparse.Namespace) -> int:
    """Against whatever cloud the AWS environment names (AWS, LocalStack, moto): never a local branch."""
    import boto3

    from meterflow.localcloud.sftp_keys import rotate_sftp_key

    session = boto3.session.Session()
    rotation = rotate_sftp_key(
        session.client("secretsmanager"),
        session.client("transfer"),
        args.stack_name,
        server_id=args.server_id,
        user_name=args.user_name,
    )
    print(
        f"SFTP user {rotation.user_name} on {rotation.server_id}: key {rotation.ssh_public_key_id} "
        f"installed, private key stored in {args.stack_name}/sftp/private_key, "
        f"{len(rotation.removed_key_ids)} older key(s) removed"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="meterflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the local cloud and keep it serving until Ctrl-C")
    _add_cloud_options(up)
    up.set_defaults(func=cmd_up)

    chalice_config = commands.add_parser(
        "chalice-config",
        help="write the running local cloud's settings into the local stage of the Chalice config, "
        "for `chalice local --stage local`",
    )
    chalice_config.add_argument("--state-dir", default=".meterflow", help="the running cloud's --state-dir")
    chalice_config.add_argument("--config", default=str(DEFAULT_CHALICE_CONFIG), help="the config.json")
    chalice_config.add_argument("--stage", default=CHALICE_STAGE)
    chalice_config.add_argument(
        "--check", action="store_true", help="only compare: exit 1 when the stage differs, without writing"
    )
    chalice_config.set_defaults(func=cmd_chalice_config)

    demo = commands.add_parser(
        "demo", help="start the local cloud, run the HES scenario, print a summary, stop"
    )
    _add_cloud_options(demo)
    demo.add_argument("--download-dir", default=".meterflow/downloads", help="where the SFTP download goes")
    demo.add_argument("--export-hours", type=int, default=24, help="hours of readings to export (default 24)")
    demo.set_defaults(func=cmd_demo)

    truth = commands.add_parser("truth", help="list the simulator's ground-truth events in a window as CSV")
    truth.add_argument("--start-date", required=True)
    truth.add_argument("--end-date", required=True)
    truth.add_argument(
        "--kind", action="append", choices=["outage", "spike", "dip", "theft", "missing", "late"]
    )
    truth.add_argument("--meters", type=int, default=10_000)
    truth.add_argument("--seed", type=int, default=20_230_227)
    truth.set_defaults(func=cmd_truth)
    _add_lake_commands(commands)

    historian = commands.add_parser("historian", help="on-premises historians").add_subparsers(
        dest="historian_command", required=True
    )
    seed = historian.add_parser(
        "seed", help="fill a historian (postgresql+psycopg://, sqlite:///, csv:///) with simulated readings"
    )
    seed.add_argument(
        "--url", required=True, help="the historian, as the on-premises worker's MF_HISTORIAN_URL"
    )
    seed.add_argument("--start", required=True, help="window start, YYYY-MM-DD HH:MM:SS")
    seed.add_argument("--end", required=True, help="window end (exclusive)")
    seed.add_argument("--meters", type=int, default=10_000)
    seed.add_argument("--seed", type=int, default=20_230_227)
    seed.set_defaults(func=cmd_historian_seed)

    sftp = commands.add_parser("sftp", help="the deployed stack's SFTP endpoint").add_subparsers(
        dest="sftp_command", required=True
    )
    rotate = sftp.add_parser(
        "rotate-key",
        help="make a new key pair for the SFTP user: private key to <stack>/sftp/private_key, public key to "
        "the Transfer Family user, older keys removed (run after the first terraform apply, then to rotate)",
    )
    rotate.add_argument("--stack-name", default="meterflow", help="the stack_name Terraform was applied with")
    rotate.add_argument(
        "--server-id", help="the Transfer Family server (default: the one tagged <stack>-sftp)"
    )
    rotate.add_argument("--user-name", default="sftp-user")
    rotate.set_defaults(func=cmd_sftp_rotate_key)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
