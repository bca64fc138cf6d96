"""Runtime settings, read once from the environment by each runtime's wiring module.

The same variables are set by Terraform on the Lambda functions and by the local runtime on its
worker processes and API server, so code never needs to know where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from meterflow.core.timeutil import parse_hes_time
from meterflow.hes.domain.fleet import EventRates, FleetConfig


class MissingSettings(RuntimeError):
    """Variables a runtime needs are not set (or empty); the message names every one of them."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(dict.fromkeys(missing))
        super().__init__(
            f"{len(self.missing)} environment variable(s) not set: {', '.join(self.missing)}. "
            "Terraform sets them on the Lambda functions and `meterflow up` on its workers and API; "
            "for `chalice local --stage local` the `local` stage of chalice_app/.chalice/config.json "
            "holds them (`meterflow chalice-config` rewrites it from a running local cloud)."
        )


def require_env(names: Iterable[str], env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`MissingSettings` naming every one of ``names`` that ``env`` lacks or leaves empty."""
    env = os.environ if env is None else env
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise MissingSettings(missing)


def check_settings(
    *loaders: Callable[[Mapping[str, str]], object], env: Mapping[str, str] | None = None
) -> None:
    """Run every settings loader (``Settings.from_env``...) and report all their missing variables at once.

    A runtime calls this when it starts, so a missing variable stops it with one message naming
    them all instead of failing each request. Invalid values raise as the loader raises them.
    """
    env = os.environ if env is None else env
    missing: list[str] = []
    for load in loaders:
        try:
            load(env)
        except MissingSettings as error:
            missing += error.missing
    if missing:
        raise MissingSettings(missing)


@dataclass(frozen=True)
class Settings:
    stack_name: str
    region: str
    file_requests_table: str
    file_requests_queue_url: str
    export_jobs_queue_url: str
    exports_bucket: str
    export_state_machine_arn: str
    fleet: FleetConfig
    export_chunk_records: int = 120_000
    export_max_chunks: int = 1_000
    # Below the state machine's HeartbeatSeconds (60 s by default) with room for two misses.
    heartbeat_interval_seconds: float = 15.0
    # A fixed "now" makes a fleet's visible history reproducible (tests, demos); empty = wall clock.
    fixed_now: datetime | None = None

    REQUIRED_ENV: ClassVar[tuple[str, ...]] = (
        "MF_FILE_REQUESTS_TABLE",
        "MF_FILE_REQUESTS_QUEUE_URL",
        "MF_EXPORT_JOBS_QUEUE_URL",
        "MF_EXPORTS_BUCKET",
        "MF_EXPORT_STATE_MACHINE_ARN",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        require_env(cls.REQUIRED_ENV, env)
        fleet = FleetConfig(
            meter_count=int(env.get("MF_FLEET_METER_COUNT", "10000")),
            interval_minutes=int(env.get("MF_FLEET_INTERVAL_MINUTES", "15")),
            start=parse_hes_time(env.get("MF_FLEET_START", "2023-01-01 00:00:00.000000"), "MF_FLEET_START"),
            seed=int(env.get("MF_FLEET_SEED", "20230227")),
            rates=EventRates(
                late_fraction=float(env.get("MF_FLEET_LATE_FRACTION", "0.10")),
                late_max_minutes=int(env.get("MF_FLEET_LATE_MAX_MINUTES", "1440")),
                missing_fraction=float(env.get("MF_FLEET_MISSING_FRACTION", "0.002")),
                outage_per_meter_day=float(env.get("MF_FLEET_OUTAGE_RATE", "0.002")),
            ),
        )
        fixed_now = env.get("MF_FIXED_NOW")
        return cls(
            stack_name=env.get("MF_STACK_NAME", "meterflow"),
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            file_requests_table=env["MF_FILE_REQUESTS_TABLE"],
            file_requests_queue_url=env["MF_FILE_REQUESTS_QUEUE_URL"],
            export_jobs_queue_url=env["MF_EXPORT_JOBS_QUEUE_URL"],
            exports_bucket=env["MF_EXPORTS_BUCKET"],
            export_state_machine_arn=env["MF_EXPORT_STATE_MACHINE_ARN"],
            fleet=fleet,
            export_chunk_records=int(env.get("MF_EXPORT_CHUNK_RECORDS", "120000")),
            export_max_chunks=int(env.get("MF_EXPORT_MAX_CHUNKS", "1000")),
            heartbeat_interval_seconds=float(env.get("MF_HEARTBEAT_INTERVAL_SECONDS", "15")),
            fixed_now=parse_hes_time(fixed_now, "MF_FIXED_NOW") if fixed_now else None,
        )

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`, for processes the local runtime starts."""
        fleet, rates = self.fleet, self.fleet.rates
        env = {
            "MF_STACK_NAME": self.stack_name,
            "AWS_REGION": self.region,
            "MF_FILE_REQUESTS_TABLE": self.file_requests_table,
            "MF_FILE_REQUESTS_QUEUE_URL": self.file_requests_queue_url,
            "MF_EXPORT_JOBS_QUEUE_URL": self.export_jobs_queue_url,
            "MF_EXPORTS_BUCKET": self.exports_bucket,
            "MF_EXPORT_STATE_MACHINE_ARN": self.export_state_machine_arn,
            "MF_FLEET_METER_COUNT": str(fleet.meter_count),
            "MF_FLEET_INTERVAL_MINUTES": str(fleet.interval_minutes),
            "MF_FLEET_START": fleet.start.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "MF_FLEET_SEED": str(fleet.seed),
            "MF_FLEET_LATE_FRACTION": str(rates.late_fraction),
            "MF_FLEET_LATE_MAX_MINUTES": str(rates.late_max_minutes),
            "MF_FLEET_MISSING_FRACTION": str(rates.missing_fraction),
            "MF_FLEET_OUTAGE_RATE": str(rates.outage_per_meter_day),
            "MF_EXPORT_CHUNK_RECORDS": str(self.export_chunk_records),
            "MF_EXPORT_MAX_CHUNKS": str(self.export_max_chunks),
            "MF_HEARTBEAT_INTERVAL_SECONDS": str(self.heartbeat_interval_seconds),
        }
        if self.fixed_now is not None:
            env["MF_FIXED_NOW"] = self.fixed_now.strftime("%Y-%m-%d %H:%M:%S.%f")
        return env
