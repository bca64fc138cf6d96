"""Hourly weather for the lake's ``weather`` table, from the simulator or from a real provider.

The weather dataflow asks a :class:`WeatherProvider` for a window and writes one Parquet object per
UTC day (``weather/date=YYYY-MM-DD/data.parquet``). :class:`SimulatedWeather` publishes exactly the
temperature the HES simulator's load model responds to, so a model trained on the lake can recover
the fleet's heating and cooling response; an adapter (``meterflow.lake.adapters.open_meteo``) serves
observed temperatures for real meter data such as the London dataset.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Final

import numpy as np
import pyarrow as pa

from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import to_epoch_seconds
from meterflow.hes import temperature_c
from meterflow.lake.domain.schema import WEATHER_SCHEMA, weather_object_key

# A year, leap day included: one request stays within a single provider call and a Lambda's memory.
MAX_WEATHER_DAYS: Final = 366
_MICROSECONDS_PER_DAY = 86_400_000_000


def validate_window(start: datetime, end: datetime) -> None:
    """Check a weather window: naive UTC, whole hours, start before end, at most a year long."""
    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is not None:
            raise InvalidInput(f"{name} must be a naive UTC datetime, got {moment.isoformat()}", field=name)
        if moment.minute or moment.second or moment.microsecond:
            raise InvalidInput(f"{name} must be on a whole hour, got {moment.isoformat()}", field=name)
    if start >= end:
        raise InvalidInput(f"end ({end.isoformat()}) must be after start ({start.isoformat()})", field="end")
    if end - start > timedelta(days=MAX_WEATHER_DAYS):
        raise InvalidInput(f"a weather window spans at most {MAX_WEATHER_DAYS} days", field="end")


def weather_table(observation_time: pa.Array, temperature: pa.Array, source: str) -> pa.Table:
    """Assemble a WEATHER_SCHEMA table (one ``source`` for every row)."""
    return pa.Table.from_arrays(
        [
            observation_time.cast(pa.timestamp("us")),
            temperature.cast(pa.float64()),
            pa.array([source] * len(observation_time), type=pa.string()),
        ],
        schema=WEATHER_SCHEMA,
    )


class SimulatedWeather:
    """The simulated territory's weather: :func:`meterflow.hes.domain.weather.temperature_c`, hourly.

    Built with the fleet's seed, it is the very series the HES load model used, hour for hour.
    """

    source = "simulated"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def hourly(self, start: datetime, end: datetime) -> pa.Table:
        validate_window(start, end)
        seconds = np.arange(to_epoch_seconds(start), to_epoch_seconds(end), 3600, dtype=np.int64)
        times = pa.array(seconds.astype("datetime64[s]").astype("datetime64[us]"))
        return weather_table(times, pa.array(temperature_c(seconds, self.seed)), self.source)


def weather_days(table: pa.Table) -> dict[date, pa.Table]:
    """Split a weather table into UTC days (one lake object each), rows in time order within a day.

    Days come out in calendar order; a day with no rows has no entry, so a partial day is never
    padded and never overwritten with an empty object.
    """
    missing = [name for name in WEATHER_SCHEMA.names if name not in table.column_names]
    if missing:
        raise InvalidInput(f"weather table lacks columns {missing}", field="table")
    table = table.select(WEATHER_SCHEMA.names).cast(WEATHER_SCHEMA).sort_by("observation_time")
    micros = table.column("observation_time").cast(pa.int64()).to_numpy()
    day_number = micros // _MICROSECONDS_PER_DAY  # floor division: right for times before 1970 too
    first_rows = np.flatnonzero(np.diff(day_number, prepend=day_number[:1] - 1))
    bounds = [*first_rows.tolist(), len(day_number)]
    epoch = date(1970, 1, 1)
    return {
        epoch + timedelta(days=int(day_number[first])): table.slice(first, stop - first)
        for first, stop in itertools.pairwise(bounds)
    }


def weather_day_objects(table: pa.Table) -> dict[str, pa.Table]:
    """:func:`weather_days`, keyed by each day's object key (``weather/date=YYYY-MM-DD/data.parquet``)."""
    return {
        weather_object_key(datetime.combine(day, time())): rows for day, rows in weather_days(table).items()
    }
