"""Settings of the HES runtimes (API, export workers), read once from the environment by the HES wiring.

Variables ``MF_HES_<FIELD>``, and the shared ones of :mod:`meterflow.core.settings`; Terraform sets
them on the Lambda functions and the local runtime on its worker processes and API server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import field_validator, model_validator

from meterflow.core.settings import FeatureSettings, FixedNow
from meterflow.core.timeutil import parse_hes_time
from meterflow.hes.domain.fleet import EventRates, FleetConfig

_FLEET = FleetConfig()


class HesSettings(FeatureSettings, env_prefix="MF_HES_"):
    stack_name: str = "meterflow"
    file_requests_table: str
    file_requests_queue_url: str
    export_jobs_queue_url: str
    exports_bucket: str
    export_state_machine_arn: str
    # The simulated fleet (:attr:`fleet`); defaults are FleetConfig's.
    fleet_meter_count: int = _FLEET.meter_count
    fleet_interval_minutes: int = _FLEET.interval_minutes
    fleet_start: datetime = _FLEET.start
    fleet_seed: int = _FLEET.seed
    fleet_late_fraction: float = _FLEET.rates.late_fraction
    fleet_late_max_minutes: int = _FLEET.rates.late_max_minutes
    fleet_missing_fraction: float = _FLEET.rates.missing_fraction
    fleet_outage_rate: float = _FLEET.rates.outage_per_meter_day
    export_chunk_records: int = 120_000
    export_max_chunks: int = 1_000
    fixed_now: FixedNow = None

    @property
    def fleet(self) -> FleetConfig:
        return FleetConfig(
            meter_count=self.fleet_meter_count,
            interval_minutes=self.fleet_interval_minutes,
            start=self.fleet_start,
            seed=self.fleet_seed,
            rates=EventRates(
                late_fraction=self.fleet_late_fraction,
                late_max_minutes=self.fleet_late_max_minutes,
                missing_fraction=self.fleet_missing_fraction,
                outage_per_meter_day=self.fleet_outage_rate,
            ),
        )

    @staticmethod
    def fleet_fields(fleet: FleetConfig) -> dict[str, Any]:
        """The fields of a fleet (the inverse of :attr:`fleet`), to build settings with it."""
        return {
            "fleet_meter_count": fleet.meter_count,
            "fleet_interval_minutes": fleet.interval_minutes,
            "fleet_start": fleet.start,
            "fleet_seed": fleet.seed,
            "fleet_late_fraction": fleet.rates.late_fraction,
            "fleet_late_max_minutes": fleet.rates.late_max_minutes,
            "fleet_missing_fraction": fleet.rates.missing_fraction,
            "fleet_outage_rate": fleet.rates.outage_per_meter_day,
        }

    @field_validator("fleet_start", mode="before")
    @classmethod
    def _hes_time(cls, value: object) -> object:
        return parse_hes_time(value, cls.env_name("fleet_start")) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fleet_is_valid(self) -> Self:
        self.fleet  # noqa: B018 - FleetConfig and EventRates check themselves
        return self
