"""Named lake queries: validation, SQL rendering, and every query run by DuckDB over a lake on disk."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterflow.core.errors import InvalidInput, NotFound
from meterflow.lake.adapters.duckdb_engine import DuckDbLakeEngine
from meterflow.lake.domain.catalog import READINGS, WEATHER
from meterflow.lake.domain.queries import (
    DAILY_CONSUMPTION,
    NAMED_QUERIES,
    QueryFailed,
    list_named_queries,
    named_query,
    partition_predicate,
    run_named_query,
)
from meterflow.lake.domain.schema import LONG_SCHEMA, WEATHER_SCHEMA, PartitionKey, weather_object_key

BUCKET = "meterflow-integrated"
HES_METER = "0b7c4a9e-1d2f-3a4b-8c5d-6e7f8a9b0c1d"
OTHER_HES_METER = "MTR-B"
LONDON_METER = "MAC000002"

Reading = tuple[str, str, str, float]  # meter_id, reading_type, reading_date_time, value

# Two days either side of a month end (2024 is a leap year), one reading outside every window used
# below, and readings of a type no consumption query should touch.
READINGS_ROWS: tuple[Reading, ...] = (
    (HES_METER, "kw", "2024-02-29 00:00", 1.0),
    (HES_METER, "kw", "2024-02-29 00:15", 2.0),
    (HES_METER, "kw", "2024-02-29 00:30", 3.0),
    (HES_METER, "kw", "2024-02-29 00:45", 4.0),
    (HES_METER, "kw", "2024-02-29 13:00", 2.0),
    (HES_METER, "kw", "2024-02-29 13:15", 2.0),
    (HES_METER, "kw", "2024-03-01 00:00", 8.0),
    (HES_METER, "kwh", "2024-03-01 00:00", 0.75),
    (HES_METER, "kw", "2024-03-02 10:00", 100.0),
    (HES_METER, "vltg", "2024-02-29 00:00", 230.0),
    (OTHER_HES_METER, "kw", "2024-02-29 00:00", 0.5),
    (OTHER_HES_METER, "kw", "2024-02-29 00:15", 1.5),
    (LONDON_METER, "kwh", "2024-02-29 00:00", 0.2),
    (LONDON_METER, "kwh", "2024-02-29 00:30", 0.3),
    (LONDON_METER, "kwh", "2024-03-01 12:00", 1.25),
)
WEATHER_ROWS: dict[str, tuple[tuple[str, float], ...]] = {
    "2024-02-29": (("2024-02-29 00:00", 1.0), ("2024-02-29 08:00", 3.0), ("2024-02-29 16:00", 5.0)),
    "2024-03-01": (("2024-03-01 00:00", -2.5), ("2024-03-01 12:00", 0.5)),
}
UNITS = {"kw": "kW", "kwh": "kWh", "vltg": "kV"}

# Valid parameters for every query, over the fixture's days.
VALID_PARAMS: dict[str, dict[str, str]] = {
    "lake_stats": {},
    "daily_consumption": {"meter_id": HES_METER, "start_date": "2024-02-29", "end_date": "2024-03-01"},
    "hourly_fleet_load": {"start": "2024-02-29T00:00:00", "end": "2024-03-01T00:00:00"},
    "meter_readings": {
        "meter_id": HES_METER,
        "start": "2024-02-29T00:00:00",
        "end": "2024-02-29T01:00:00",
        "reading_type": "kw",
    },
    "weather_daily": {"start_date": "2024-02-29", "end_date": "2024-03-01"},
}


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def write_readings(root: Path, rows: tuple[Reading, ...]) -> None:
    """Write ``rows`` as the lake does: one Parquet object per (reading_type, hour) partition."""
    partitions: dict[PartitionKey, list[Reading]] = {}
    for row in rows:
        partitions.setdefault(PartitionKey.of(row[1], _ts(row[2])), []).append(row)
    for key, members in partitions.items():
        table = pa.Table.from_pylist(
            [
                {
                    "meter_id": meter,
                    "reading_value": value,
                    "reading_date_time": _ts(moment),
                    "unit": UNITS[kind],
                    "obis_code": "1.0.1.7.0.255",
                    "phase": "total",
                    "reading_source": "hes",
                }
                for meter, kind, moment, value in members
            ],
            schema=LONG_SCHEMA,
        )
        path = root / BUCKET / key.object_key
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")


def write_weather(root: Path, days: dict[str, tuple[tuple[str, float], ...]]) -> None:
    for day, observations in days.items():
        table = pa.Table.from_pylist(
            [
                {"observation_time": _ts(moment), "temperature_c": value, "source": "synthetic"}
                for moment, value in observations
            ],
            schema=WEATHER_SCHEMA,
        )
        path = root / BUCKET / weather_object_key(_ts(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    """GIVEN a lake on disk: readings of three meters over two days (and one later reading), and weather."""
    write_readings(tmp_path, READINGS_ROWS)
    write_weather(tmp_path, WEATHER_ROWS)
    return tmp_path


@pytest.fixture
def engine_for() -> Iterator[Callable[[Path], DuckDbLakeEngine]]:
    engines: list[DuckDbLakeEngine] = []

    def build(root: Path) -> DuckDbLakeEngine:
        (root / BUCKET).mkdir(parents=True, exist_ok=True)
        engine = DuckDbLakeEngine(pafs.LocalFileSystem(), f"{root}/{BUCKET}")
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(lake_root: Path, engine_for: Callable[[Path], DuckDbLakeEngine]) -> DuckDbLakeEngine:
    return engine_for(lake_root)


@pytest.fixture
def empty_engine(tmp_path: Path, engine_for: Callable[[Path], DuckDbLakeEngine]) -> DuckDbLakeEngine:
    """GIVEN a lake bucket with no objects at all."""
    return engine_for(tmp_path / "empty")


def run(engine: DuckDbLakeEngine, name: str, **params: str) -> dict[str, Any]:
    return run_named_query(name, params, engine)


# ------------------------------------------------------------------------------------- validation
MISSING_CASES = [
    (name, parameter)
    for name, params in VALID_PARAMS.items()
    for parameter in params
    if any(p.name == parameter and p.default is None for p in NAMED_QUERIES[name].parameters)
]


@pytest.mark.parametrize(("name", "missing"), MISSING_CASES)
def test_a_missing_parameter_is_rejected_naming_it(name: str, missing: str) -> None:
    # GIVEN valid parameters less one required parameter
    params = {key: value for key, value in VALID_PARAMS[name].items() if key != missing}
    # WHEN the query is rendered THEN InvalidInput names the parameter
    with pytest.raises(InvalidInput, match=f"missing parameter '{missing}'") as raised:
        named_query(name).render(params)
    assert raised.value.field == missing


INJECTIONS = ["x' OR '1'='1", "x'; DROP TABLE readings; --", "x\nOR 1=1", "x/**/OR/**/1=1", "x\u00a0", " x"]
BAD_VALUES: list[tuple[str, str, str]] = [
    *[("daily_consumption", "meter_id", text) for text in [*INJECTIONS, "", "a" * 65, "mètre", "a_b", "a\n"]],
    *[
        ("daily_consumption", "start_date", text)
        for text in [
            "2024-02-30",
            "2024/02/29",
            "29-02-2024",
            "2024-02-29T00:00",
            "2024-02-29' OR '1'='1",
            "now",
            "1999-12-31",
            "9999-12-31",
        ]
    ],
    *[
        ("hourly_fleet_load", "start", text)
        for text in [
            "yesterday",
            "2024-02-29T25:00",
            "2024-02-29T00:00:00' OR 1=1 --",
            "1709164800",
            "2024-2-29",
            "0001-01-01T00:00:00+01:00",
            "2101-01-01T00:00:00",
        ]
    ],
    *[("meter_readings", "reading_type", text) for text in ["KW", "kw' OR '1'='1", "kwh;", "power"]],
    *[
        ("meter_readings", "limit", text)
        for text in ["0", "10001", "-1", "1e3", "1; DROP TABLE readings", "ten"]
    ],
]


@pytest.mark.parametrize(("name", "field", "value"), BAD_VALUES)
def test_a_bad_parameter_value_is_rejected_naming_it(name: str, field: str, value: str) -> None:
    # GIVEN valid parameters with one value replaced by something malformed or hostile
    params = {**VALID_PARAMS[name], field: value}
    # WHEN the query is rendered THEN InvalidInput names the parameter (blank counts as missing)
    with pytest.raises(InvalidInput) as raised:
        named_query(name).render(params)
    assert raised.value.field == field
    assert field in raised.value.message


def test_an_unknown_parameter_is_rejected_naming_it() -> None:
    with pytest.raises(InvalidInput, match="unknown parameter 'meter'") as raised:
        named_query("daily_consumption").render({**VALID_PARAMS["daily_consumption"], "meter": "x"})
    assert raised.value.field == "meter"


def test_a_parameter_that_is_not_a_string_is_rejected() -> None:
    params: dict[str, object] = {**VALID_PARAMS["meter_readings"], "limit": 10}
    with pytest.raises(InvalidInput, match="limit must be a string") as raised:
        named_query("meter_readings").render(params)
    assert raised.value.field == "limit"


@pytest.mark.parametrize(
    ("name", "params", "field", "message"),
    [
        ("daily_consumption", {"start_date": "2024-03-02", "end_date": "2024-03-01"}, "end_date", "before"),
        ("hourly_fleet_load", {"start": "2024-03-01T00:00", "end": "2024-03-01T00:00"}, "end", "after"),
        ("daily_consumption", {"start_date": "2024-01-01", "end_date": "2025-01-01"}, "end_date", "366"),
        ("hourly_fleet_load", {"start": "2024-01-01T00:00", "end": "2024-04-02T00:00:01"}, "end", "92"),
        ("meter_readings", {"start": "2024-01-01T00:00", "end": "2024-02-01T00:00:01"}, "end", "31"),
        ("weather_daily", {"start_date": "2024-01-01", "end_date": "2025-01-01"}, "end_date", "366"),
    ],
)
def test_a_window_out_of_order_or_too_long_is_rejected(
    name: str, params: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        named_query(name).render({**VALID_PARAMS[name], **params})
    assert raised.value.field == field


def test_the_longest_allowed_windows_are_accepted() -> None:
    # GIVEN windows exactly at their caps WHEN rendered THEN no error
    named_query("daily_consumption").render({**VALID_PARAMS["daily_consumption"], "end_date": "2024-12-31"})
    named_query("hourly_fleet_load").render({"start": "2024-01-01T00:00", "end": "2024-04-02T00:00"})


def test_an_unknown_query_is_not_found() -> None:
    with pytest.raises(NotFound, match="no query named 'drop_everything'") as raised:
        named_query("drop_everything")
    assert raised.value.field == "query"


@settings(max_examples=200, deadline=None)
@given(meter_id=st.text(max_size=80) | st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True))
def test_a_meter_id_reaches_the_sql_only_if_it_is_plain(meter_id: str) -> None:
    # GIVEN any text at all as the meter id
    params = {**VALID_PARAMS["daily_consumption"], "meter_id": meter_id}
    plain = re.fullmatch(r"[A-Za-z0-9-]{1,64}", meter_id) is not None
    # WHEN the query is rendered
    if not plain:
        # THEN either it is rejected, naming the parameter
        with pytest.raises(InvalidInput) as raised:
            DAILY_CONSUMPTION.render(params)
        assert raised.value.field == "meter_id"
        return
    sql = DAILY_CONSUMPTION.render(params).sql
    # ... or it is letters, digits and dashes, quoted as one literal
    assert f"meter_id = '{meter_id}'" in sql


# ------------------------------------------------------------------------------------- rendering
def test_daily_consumption_renders_literals_and_the_partition_predicate() -> None:
    # WHEN a two-day range across a month end is rendered
    rendered = DAILY_CONSUMPTION.render(VALID_PARAMS["daily_consumption"])
    # THEN values appear only as typed literals, and the partition columns bound the days read
    assert f"meter_id = '{HES_METER}'" in rendered.sql
    assert "reading_type IN ('kw', 'kwh')" in rendered.sql
    assert (
        "reading_date_time >= TIMESTAMP '2024-02-29 00:00:00' "
        "AND reading_date_time < TIMESTAMP '2024-03-02 00:00:00'" in rendered.sql
    )
    assert (
        '"year" BETWEEN 2024 AND 2024 AND (("year" = 2024 AND "month" = 2 AND "day" BETWEEN 29 AND 29) '
        'OR ("year" = 2024 AND "month" = 3 AND "day" BETWEEN 1 AND 1))' in rendered.sql
    )
    assert rendered.parameters == {
        "meter_id": HES_METER,
        "start_date": "2024-02-29",
        "end_date": "2024-03-01",
    }


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (
            date(2023, 12, 30),
            date(2024, 1, 2),
            '"year" BETWEEN 2023 AND 2024 AND (("year" = 2023 AND "month" = 12 AND "day" BETWEEN 30 AND 31) '
            'OR ("year" = 2024 AND "month" = 1 AND "day" BETWEEN 1 AND 2))',
        ),
        (
            date(2024, 1, 5),
            date(2024, 3, 3),
            '"year" BETWEEN 2024 AND 2024 AND (("year" = 2024 AND "month" = 1 AND "day" BETWEEN 5 AND 31) '
            'OR ("year" = 2024 AND "month" = 2 AND "day" BETWEEN 1 AND 29) '
            'OR ("year" = 2024 AND "month" = 3 AND "day" BETWEEN 1 AND 3))',
        ),
    ],
)
def test_the_readings_partition_predicate_has_one_disjunct_per_month(
    first: date, last: date, expected: str
) -> None:
    assert partition_predicate(READINGS, first, last) == expected


def test_the_weather_partition_predicate_bounds_the_date_partition() -> None:
    assert (
        partition_predicate(WEATHER, date(2024, 2, 29), date(2024, 3, 1))
        == "\"date\" BETWEEN '2024-02-29' AND '2024-03-01'"
    )


def test_a_timestamp_with_an_offset_is_converted_to_utc_and_the_end_day_is_exclusive() -> None:
    # GIVEN a window given in UTC+01:00 that ends exactly at a midnight (UTC)
    params = {"start": "2024-02-29T01:00:00+01:00", "end": "2024-03-01T00:00:00Z"}
    # WHEN rendered
    rendered = named_query("hourly_fleet_load").render(params)
    # THEN the literals are UTC and the day after the window is not read
    assert rendered.parameters == {"start": "2024-02-29T00:00:00", "end": "2024-03-01T00:00:00"}
    assert "TIMESTAMP '2024-02-29 00:00:00'" in rendered.sql
    assert '("year" = 2024 AND "month" = 2 AND "day" BETWEEN 29 AND 29))' in rendered.sql
    assert '"month" = 3' not in rendered.sql


def test_fractional_seconds_survive_rendering() -> None:
    params = {"start": "2024-02-29T00:00:00.25", "end": "2024-02-29T01:00"}
    assert "TIMESTAMP '2024-02-29 00:00:00.250000'" in named_query("hourly_fleet_load").render(params).sql


@pytest.mark.parametrize("name", sorted(VALID_PARAMS))
def test_every_query_renders_completely(name: str) -> None:
    sql = named_query(name).render(VALID_PARAMS[name]).sql
    assert "{" not in sql and "}" not in sql
    assert ";" not in sql


def test_every_query_is_listed_with_its_parameters() -> None:
    listed = {query["name"]: query for query in list_named_queries()}
    assert set(listed) == set(VALID_PARAMS)
    limit = next(p for p in listed["meter_readings"]["parameters"] if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "type": "int",
        "description": "most rows to return",
        "required": False,
        "default": "10000",
    }


# ------------------------------------------------------------------------------------- running on DuckDB
def test_lake_stats_counts_partitions_rows_and_time_span_per_reading_type(engine: DuckDbLakeEngine) -> None:
    # WHEN lake_stats runs
    answer = run(engine, "lake_stats")
    # THEN each reading type has its hourly partitions, rows and first/last reading
    assert answer["columns"] == ["reading_type", "partitions", "row_count", "first_reading", "last_reading"]
    assert answer["rows"] == [
        ["kw", 4, 10, "2024-02-29T00:00:00", "2024-03-02T10:00:00"],
        ["kwh", 3, 4, "2024-02-29T00:00:00", "2024-03-01T12:00:00"],
        ["vltg", 1, 1, "2024-02-29T00:00:00", "2024-02-29T00:00:00"],
    ]
    assert answer["row_count"] == 3
    assert answer["engine"] == "duckdb"
    assert answer["query"] == "lake_stats"
    assert answer["parameters"] == {}


def test_daily_consumption_is_a_quarter_hour_of_each_kw_reading_plus_each_kwh_reading(
    engine: DuckDbLakeEngine,
) -> None:
    # WHEN the HES meter's consumption over the two days is asked for
    answer = run(engine, "daily_consumption", **VALID_PARAMS["daily_consumption"])
    # THEN day 1 = 0.25 h x (1+2+3+4+2+2) kW; day 2 = 0.25 h x 8 kW + 0.75 kWh; the vltg reading and
    # the reading after the window do not count
    assert answer["columns"] == ["reading_date", "kwh", "kw_readings", "kwh_readings"]
    assert answer["rows"] == [["2024-02-29", 3.5, 6, 0], ["2024-03-01", 2.75, 1, 1]]


def test_daily_consumption_of_a_london_meter_sums_its_kwh(engine: DuckDbLakeEngine) -> None:
    answer = run(
        engine, "daily_consumption", meter_id=LONDON_METER, start_date="2024-02-01", end_date="2024-03-31"
    )
    assert [row[0] for row in answer["rows"]] == ["2024-02-29", "2024-03-01"]
    assert answer["rows"][0][1] == pytest.approx(0.5)
    assert answer["rows"][1][1:] == [1.25, 0, 1]


def test_daily_consumption_includes_the_end_date(engine: DuckDbLakeEngine) -> None:
    answer = run(
        engine, "daily_consumption", meter_id=HES_METER, start_date="2024-03-02", end_date="2024-03-02"
    )
    assert answer["rows"] == [["2024-03-02", 25.0, 1, 0]]


def test_hourly_fleet_load_sums_every_meters_kw_per_hour(engine: DuckDbLakeEngine) -> None:
    # WHEN the fleet's load on the first day is asked for
    answer = run(engine, "hourly_fleet_load", **VALID_PARAMS["hourly_fleet_load"])
    # THEN hour 0 has both HES meters (10 + 2 kW), hour 13 one; London kwh readings are not kW
    assert answer["columns"] == ["hour_start", "total_kw", "kwh", "meter_count"]
    assert answer["rows"] == [["2024-02-29T00:00:00", 12.0, 3.0, 2], ["2024-02-29T13:00:00", 4.0, 1.0, 1]]


def test_meter_readings_are_the_long_rows_in_time_order(engine: DuckDbLakeEngine) -> None:
    answer = run(engine, "meter_readings", **VALID_PARAMS["meter_readings"])
    assert answer["columns"] == [
        "meter_id",
        "reading_type",
        "reading_date_time",
        "reading_value",
        "unit",
        "obis_code",
        "phase",
        "reading_source",
    ]
    assert [(row[2], row[3]) for row in answer["rows"]] == [
        ("2024-02-29T00:00:00", 1.0),
        ("2024-02-29T00:15:00", 2.0),
        ("2024-02-29T00:30:00", 3.0),
        ("2024-02-29T00:45:00", 4.0),
    ]
    assert answer["rows"][0] == [
        HES_METER,
        "kw",
        "2024-02-29T00:00:00",
        1.0,
        "kW",
        "1.0.1.7.0.255",
        "total",
        "hes",
    ]
    assert answer["parameters"]["limit"] == 10_000


def test_meter_readings_honours_the_limit_and_the_exclusive_end(engine: DuckDbLakeEngine) -> None:
    limited = run(engine, "meter_readings", **{**VALID_PARAMS["meter_readings"], "limit": "2"})
    assert [row[2] for row in limited["rows"]] == ["2024-02-29T00:00:00", "2024-02-29T00:15:00"]
    before_quarter = run(
        engine, "meter_readings", **{**VALID_PARAMS["meter_readings"], "end": "2024-02-29T00:15"}
    )
    assert [row[2] for row in before_quarter["rows"]] == ["2024-02-29T00:00:00"]


def test_weather_daily_gives_min_mean_max_per_day(engine: DuckDbLakeEngine) -> None:
    answer = run(engine, "weather_daily", **VALID_PARAMS["weather_daily"])
    assert answer["columns"] == [
        "observation_date",
        "min_temperature_c",
        "avg_temperature_c",
        "max_temperature_c",
        "observations",
    ]
    assert answer["rows"] == [["2024-02-29", 1.0, 3.0, 5.0, 3], ["2024-03-01", -2.5, -1.0, 0.5, 2]]
    one_day = run(engine, "weather_daily", start_date="2024-03-01", end_date="2024-03-01")
    assert [row[0] for row in one_day["rows"]] == ["2024-03-01"]


@pytest.mark.parametrize("name", sorted(VALID_PARAMS))
def test_every_query_on_an_empty_lake_returns_no_rows(empty_engine: DuckDbLakeEngine, name: str) -> None:
    # WHEN any query runs on a bucket with nothing in it THEN it answers with its columns and no rows
    answer = run(empty_engine, name, **VALID_PARAMS[name])
    assert answer["rows"] == []
    assert answer["row_count"] == 0
    assert answer["columns"]


def test_partitions_written_after_the_engine_started_are_seen(
    tmp_path: Path, engine_for: Callable[[Path], DuckDbLakeEngine]
) -> None:
    # GIVEN an engine over an empty lake that has answered once
    engine = engine_for(tmp_path)
    assert run(engine, "lake_stats")["rows"] == []
    # WHEN a partition lands
    write_readings(tmp_path, READINGS_ROWS[:2])
    # THEN the next query sees it
    assert run(engine, "lake_stats")["rows"] == [["kw", 1, 2, "2024-02-29T00:00:00", "2024-02-29T00:15:00"]]


def test_queries_on_a_window_do_not_open_partitions_outside_it(
    lake_root: Path, engine_for: Callable[[Path], DuckDbLakeEngine]
) -> None:
    # GIVEN an unreadable object in a partition far outside the window
    corrupt = lake_root / BUCKET / PartitionKey("kw", 2023, 1, 1, 0).object_key
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not parquet")
    engine = engine_for(lake_root)
    # WHEN queries on the window run THEN they succeed: the partition predicate pruned that directory
    daily = run(engine, "daily_consumption", **VALID_PARAMS["daily_consumption"])
    assert daily["rows"] == [["2024-02-29", 3.5, 6, 0], ["2024-03-01", 2.75, 1, 1]]
    assert run(engine, "hourly_fleet_load", **VALID_PARAMS["hourly_fleet_load"])["row_count"] == 2
    # ... while a query over every partition does open it
    with pytest.raises(QueryFailed, match="DuckDB could not run the query"):
        run(engine, "lake_stats")


def test_the_views_are_open_to_ad_hoc_sql(engine: DuckDbLakeEngine) -> None:
    engine.refresh()
    count = engine.connection.execute(
        "SELECT count(*) FROM readings WHERE meter_id = ?", [LONDON_METER]
    ).fetchone()
    assert count == (3,)
    columns = [row[0] for row in engine.connection.execute("DESCRIBE topology_meters").fetchall()]
    assert columns[:2] == ["meter_id", "service_transformer_id"]


def test_a_bucket_that_does_not_exist_is_an_error_not_an_empty_lake(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no bucket"):
        DuckDbLakeEngine(pafs.LocalFileSystem(), f"{tmp_path}/no-such-bucket")
