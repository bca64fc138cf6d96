"""Hourly weather for the lake: the simulated provider, window validation and the split into days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import to_epoch_seconds
from meterflow.hes.domain.fleet import Fleet
from meterflow.hes.domain.weather import temperature_c
from meterflow.lake.domain.schema import WEATHER_SCHEMA
from meterflow.lake.domain.weather_source import (
    MAX_WEATHER_DAYS,
    SimulatedWeather,
    weather_day_objects,
    weather_days,
)
from meterflow.lake.ports import WeatherProvider

SEED = 20_230_227
START = datetime(2023, 3, 25, 22)  # two hours of the 25th, all of the 26th, two hours of the 27th
END = datetime(2023, 3, 27, 2)


@pytest.fixture
def provider() -> WeatherProvider:
    return SimulatedWeather(SEED)


@pytest.fixture
def window_table(provider: WeatherProvider) -> pa.Table:
    return provider.hourly(START, END)


def test_hourly_rows_cover_the_window_with_the_weather_schema(window_table: pa.Table) -> None:
    # GIVEN a 28-hour window
    # THEN there is one row per hour in [start, end), in time order, in the lake's weather schema
    assert window_table.schema.equals(WEATHER_SCHEMA)
    times = window_table.column("observation_time").to_pylist()
    assert times == [START + timedelta(hours=i) for i in range(28)]
    assert set(window_table.column("source").to_pylist()) == {"simulated"}


def test_temperature_is_the_simulators_temperature_at_each_hour(window_table: pa.Table) -> None:
    # GIVEN the simulator's own temperature function at the same instants
    times = window_table.column("observation_time").to_pylist()
    expected = temperature_c([to_epoch_seconds(moment) for moment in times], SEED)
    # THEN the published series equals it exactly: the lake's weather is the load model's weather
    assert np.array_equal(window_table.column("temperature_c").to_numpy(), expected)


def test_a_fleets_seed_reproduces_the_temperature_its_load_model_used(fleet: Fleet) -> None:
    # GIVEN the fleet's first day, at whole hours
    start = fleet.config.start
    table = SimulatedWeather(fleet.config.seed).hourly(start, start + timedelta(days=1))
    # WHEN the temperature is computed the way Fleet.readings does (origin + slot * interval)
    slots = np.arange(0, fleet.slots_per_day, 3600 // fleet.interval_seconds)
    load_model = temperature_c(fleet.origin_s + slots * fleet.interval_seconds, fleet.config.seed)
    # THEN both agree hour by hour
    assert np.array_equal(table.column("temperature_c").to_numpy(), load_model)


def test_same_seed_same_series_and_other_seed_other_series(window_table: pa.Table) -> None:
    assert SimulatedWeather(SEED).hourly(START, END).equals(window_table)
    other = SimulatedWeather(SEED + 1).hourly(START, END)
    assert not np.array_equal(
        other.column("temperature_c").to_numpy(), window_table.column("temperature_c").to_numpy()
    )


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (datetime(2023, 1, 2), datetime(2023, 1, 2), "end"),  # empty window
        (datetime(2023, 1, 2), datetime(2023, 1, 1), "end"),  # reversed
        (datetime(2023, 1, 1, 0, 30), datetime(2023, 1, 2), "start"),
        (datetime(2023, 1, 1, 0, 0, 1), datetime(2023, 1, 2), "start"),
        (datetime(2023, 1, 1, 0, 0, 0, 1), datetime(2023, 1, 2), "start"),
        (datetime(2023, 1, 1), datetime(2023, 1, 2, 0, 15), "end"),
        (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2), "start"),
        (datetime(2023, 1, 1), datetime(2023, 1, 2, tzinfo=UTC), "end"),
        (datetime(2023, 1, 1), datetime(2023, 1, 1) + timedelta(days=MAX_WEATHER_DAYS, hours=1), "end"),
    ],
)
def test_malformed_windows_are_rejected_naming_the_field(
    provider: WeatherProvider, start: datetime, end: datetime, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        provider.hourly(start, end)
    assert raised.value.field == field


def test_a_leap_year_fits_in_one_window(provider: WeatherProvider) -> None:
    start = datetime(2024, 1, 1)
    table = provider.hourly(start, start + timedelta(days=MAX_WEATHER_DAYS))
    assert table.num_rows == 366 * 24


def test_days_split_by_utc_date_in_calendar_order(window_table: pa.Table) -> None:
    # WHEN the window is split into days
    days = weather_days(window_table)
    # THEN partial days keep only their own hours, and nothing is lost or padded
    assert list(days) == [date(2023, 3, 25), date(2023, 3, 26), date(2023, 3, 27)]
    assert [table.num_rows for table in days.values()] == [2, 24, 2]
    for day, table in days.items():
        assert {moment.date() for moment in table.column("observation_time").to_pylist()} == {day}
        assert table.schema.equals(WEATHER_SCHEMA)
    assert pa.concat_tables(days.values()).equals(window_table)


def test_days_come_out_sorted_whatever_the_input_order(window_table: pa.Table) -> None:
    # GIVEN the rows in reverse order
    reversed_table = window_table.take(pa.array(np.arange(window_table.num_rows)[::-1]))
    # THEN each day is in time order
    for table in weather_days(reversed_table).values():
        times = table.column("observation_time").to_pylist()
        assert times == sorted(times)


def test_day_objects_are_keyed_by_the_lake_layout(window_table: pa.Table) -> None:
    objects = weather_day_objects(window_table)
    assert list(objects) == [
        "weather/date=2023-03-25/data.parquet",
        "weather/date=2023-03-26/data.parquet",
        "weather/date=2023-03-27/data.parquet",
    ]


def test_an_empty_table_has_no_days() -> None:
    assert weather_days(WEATHER_SCHEMA.empty_table()) == {}


def test_a_table_without_the_weather_columns_is_rejected(window_table: pa.Table) -> None:
    with pytest.raises(InvalidInput) as raised:
        weather_days(window_table.drop_columns(["source"]))
    assert raised.value.field == "table"
