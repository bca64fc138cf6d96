"""``meterflow``: run the local cloud (``up``), the end-to-end demo (``demo``), list ground truth."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from meterflow.domain.fleet import FleetConfig
from meterflow.domain.timeutil import parse_hes_time
from meterflow.runtime.local_cloud import LocalCloud, LocalCloudConfig


def _cloud_config(args: argparse.Namespace) -> LocalCloudConfig:
    import os

    return LocalCloudConfig(
        moto_port=args.moto_port,
        api_port=args.api_port,
        sftp_port=args.sftp_port,
        stack_name=args.stack_name,
        state_dir=Path(args.state_dir),
        fleet=FleetConfig(meter_count=args.meters, seed=args.seed),
        export_workers=args.workers,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
    )


def _add_cloud_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-port", type=int, default=8000, help="HTTP port of the API (default 8000)")
    parser.add_argument("--sftp-port", type=int, default=2222, help="SFTP port (default 2222)")
    parser.add_argument(
        "--moto-port", type=int, default=5050, help="port of the embedded moto server (default 5050)"
    )
    parser.add_argument("--stack-name", default="meterflow", help="prefix of every resource name")
    parser.add_argument("--state-dir", default=".meterflow", help="where host keys and known_hosts live")
    parser.add_argument("--meters", type=int, default=10_000, help="fleet size (default 10,000)")
    parser.add_argument("--seed", type=int, default=20_230_227, help="fleet seed: same seed, same readings")
    parser.add_argument("--workers", type=int, default=2, help="export worker processes (default 2)")


def cmd_up(args: argparse.Namespace) -> int:
    cloud = LocalCloud(_cloud_config(args)).start()
    print(cloud.describe(), flush=True)
    print("\nPress Ctrl-C to stop.", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    print("\nStopping...", flush=True)
    cloud.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from meterflow.runtime.demo import run_demo

    started = time.monotonic()
    with LocalCloud(_cloud_config(args)) as cloud:
        print(cloud.describe(), flush=True)
        print(flush=True)
        summary = run_demo(cloud, Path(args.download_dir), args.export_hours)
    print(summary, flush=True)
    print(
        f"\nDemo finished in {time.monotonic() - started:.1f} s; the local cloud is stopped "
        "(`make up` keeps it serving).",
        flush=True,
    )
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    from meterflow.domain.fleet import Fleet
    from meterflow.domain.truth import ground_truth

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


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="meterflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the local cloud and keep it serving until Ctrl-C")
    _add_cloud_options(up)
    up.set_defaults(func=cmd_up)

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

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
