"""Named queries over the lake, written once and run by DuckDB (locally) or Athena (in AWS).

Every query's SQL lives here, in the subset of SQL that DuckDB and Athena (Trino) read alike:
``TIMESTAMP '…'`` / ``DATE '…'`` literals, ``date_trunc``, ``CAST(… AS DATE)``, ``CASE``,
``coalesce``, double-quoted identifiers. Table names are the Glue tables of
:mod:`meterflow.lake.domain.catalog`, which the DuckDB engine mirrors as views.

Parameters arrive as strings (query-string values), are validated here and only then rendered as
SQL literals from the parsed values (a ``date``, a ``datetime``, an ``int`` or a string that
matched a strict pattern): user text never reaches the SQL as it was typed.

Queries over a time window also get the window's partition predicate, so Athena's partition
projection reads only the days asked for (and DuckDB's dataset scan skips the other directories):

- ``{partitions}``: for ``readings``, ``"year" BETWEEN … AND (("year" = Y AND "month" = M AND
  "day" BETWEEN a AND b) OR …)``, one disjunct per calendar month touched; for ``weather``,
  ``"date" BETWEEN 'YYYY-MM-DD' AND 'YYYY-MM-DD'``;
- ``{window_start}`` / ``{window_end}``: the half-open window ``[start, end)`` as timestamp literals
  (for a date range, ``start_date 00:00`` to the day after ``end_date``).

All times are UTC, as stored in the lake.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from meterflow.core.errors import DomainError, InvalidInput, NotFound
from meterflow.lake.domain.catalog import READINGS, WEATHER, LakeTable
from meterflow.lake.domain.schema import READING_TYPE_NAMES
from meterflow.lake.ports import QueryEngine

JsonScalar = str | int | float | bool | None

# A ``kw`` reading is the mean power over the fleet's 15-minute interval, so its energy is kW x 0.25 h.
KW_INTERVAL_HOURS = 0.25
MAX_READINGS_ROWS = 10_000

_METER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:\d{2})?"
)
_INT = re.compile(r"-?\d{1,18}")
# Dates and times must fall in the years partition projection covers (and far from datetime's limits).
_YEARS = next(p for p in READINGS.partitions if p.name == "year").range
FIRST_DAY, LAST_DAY = date(int(_YEARS[0]), 1, 1), date(int(_YEARS[1]), 12, 31)


class QueryFailed(DomainError):
    """The engine could not run a query (a failed or cancelled Athena query, a DuckDB error)."""

    status_code = 502
    code = "QueryFailed"


class QueryTimeout(QueryFailed):
    status_code = 504
    code = "QueryTimeout"


class ParamType(StrEnum):
    DATE = "date"  # YYYY-MM-DD
    TIMESTAMP = "timestamp"  # ISO 8601; naive means UTC, an offset is converted to UTC
    METER_ID = "meter_id"  # ^[A-Za-z0-9-]{1,64}$
    READING_TYPE = "reading_type"  # one of schema.READING_TYPE_NAMES
    INT = "int"  # bounded by minimum/maximum


ParamValue = date | datetime | int | str
_Moment = TypeVar("_Moment", date, datetime)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    description: str
    default: str | None = None  # None: the parameter is required
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: object) -> ParamValue:
        """The validated value of ``raw``, or InvalidInput naming this parameter."""
        if not isinstance(raw, str):
            raise InvalidInput(f"{self.name} must be a string, got {type(raw).__name__}", field=self.name)
        # Not stripped: a value is exactly what it says, or it is rejected.
        text = raw
        if self.type is ParamType.DATE:
            return self._parse_date(text)
        if self.type is ParamType.TIMESTAMP:
            return self._parse_timestamp(text)
        if self.type is ParamType.METER_ID:
            if not _METER_ID.fullmatch(text):
                raise InvalidInput(
                    f"{self.name} must be 1 to 64 letters, digits or '-', got {_preview(text)}",
                    field=self.name,
                )
            return text
        if self.type is ParamType.READING_TYPE:
            if text not in READING_TYPE_NAMES:
                raise InvalidInput(
                    f"{self.name} must be one of {', '.join(READING_TYPE_NAMES)}, got {_preview(text)}",
                    field=self.name,
                )
            return text
        return self._parse_int(text)

    def _parse_date(self, text: str) -> date:
        try:
            if not _DATE.fullmatch(text):
                raise ValueError(text)
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{self.name} must be a date YYYY-MM-DD, got {_preview(text)}", field=self.name
            ) from None
        return self._in_range(day, day)

    def _parse_timestamp(self, text: str) -> datetime:
        try:
            if not _TIMESTAMP.fullmatch(text):
                raise ValueError(text)
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            raise InvalidInput(
                f"{self.name} must be an ISO 8601 timestamp such as 2024-01-31T13:45:00, "
                f"got {_preview(text)}",
                field=self.name,
            ) from None
        return self._in_range(moment, moment.date())

    def _in_range(self, value: _Moment, day: date) -> _Moment:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidInput(
                f"{self.name} must be between {FIRST_DAY} and {LAST_DAY}, got {value.isoformat()}",
                field=self.name,
            )
        return value

    def _parse_int(self, text: str) -> int:
        if not _INT.fullmatch(text):
            raise InvalidInput(f"{self.name} must be an integer, got {_preview(text)}", field=self.name)
        value = int(text)
        low = self.minimum if self.minimum is not None else -(10**18)
        high = self.maximum if self.maximum is not None else 10**18
        if not low <= value <= high:
            raise InvalidInput(f"{self.name} must be between {low} and {high}, got {value}", field=self.name)
        return value


@dataclass(frozen=True)
class Window:
    """A query's time window: two parameters of one type (both dates or both timestamps) and a cap.

    Dates are inclusive (``start_date`` to ``end_date``); timestamps are half-open (``[start, end)``).
    ``table`` decides how the ``{partitions}`` predicate is written.
    """

    start: str
    end: str
    max_days: int
    table: LakeTable


@dataclass(frozen=True)
class RenderedQuery:
    name: str
    sql: str
    parameters: dict[str, JsonScalar]  # the validated values, canonical and JSON-safe


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    # A str.format template: {<parameter>} literals, {partitions}, {window_start}, {window_end} and
    # {kw_interval_hours}.
    sql: str
    parameters: tuple[Parameter, ...] = ()
    window: Window | None = None

    def validate(self, params: Mapping[str, object]) -> dict[str, ParamValue]:
        known = {parameter.name for parameter in self.parameters}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidInput(
                f"unknown parameter {unknown[0]!r} for query {self.name!r}; it takes "
                f"{', '.join(sorted(known)) or 'no parameters'}",
                field=unknown[0],
            )
        values: dict[str, ParamValue] = {}
        for parameter in self.parameters:
            raw = params.get(parameter.name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                raw = parameter.default
            if raw is None:
                raise InvalidInput(
                    f"missing parameter {parameter.name!r} ({parameter.description})", field=parameter.name
                )
            values[parameter.name] = parameter.parse(raw)
        if self.window is not None:
            _window_bounds(self.window, values)  # checks order and span
        return values

    def render(self, params: Mapping[str, object]) -> RenderedQuery:
        values = self.validate(params)
        context = {"kw_interval_hours": str(KW_INTERVAL_HOURS)}
        context.update((name, sql_literal(value)) for name, value in values.items())
        if self.window is not None:
            start, end = _window_bounds(self.window, values)
            last_day = (end - timedelta(microseconds=1)).date()
            context["partitions"] = partition_predicate(self.window.table, start.date(), last_day)
            context["window_start"] = sql_literal(start)
            context["window_end"] = sql_literal(end)
        return RenderedQuery(
            self.name,
            self.sql.format_map(context),
            {name: json_safe(value) for name, value in values.items()},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [
                {
                    "name": parameter.name,
                    "type": str(parameter.type),
                    "description": parameter.description,
                    "required": parameter.default is None,
                    **({"default": parameter.default} if parameter.default is not None else {}),
                }
                for parameter in self.parameters
            ],
        }


def _window_bounds(window: Window, values: Mapping[str, ParamValue]) -> tuple[datetime, datetime]:
    """The window as a half-open ``[start, end)`` of datetimes, after checking order and span."""
    first, last = values[window.start], values[window.end]
    if isinstance(first, datetime) and isinstance(last, datetime):
        start, end = first, last
        if end <= start:
            raise InvalidInput(f"{window.end} must be after {window.start}", field=window.end)
    elif isinstance(first, date) and isinstance(last, date):
        if last < first:
            raise InvalidInput(f"{window.end} must not be before {window.start}", field=window.end)
        start = datetime.combine(first, time())
        end = datetime.combine(last + timedelta(days=1), time())
    else:  # pragma: no cover - a definition error, not a user error
        raise TypeError(f"window {window.start}..{window.end} must be two dates or two timestamps")
    if end - start > timedelta(days=window.max_days):
        raise InvalidInput(
            f"the window {window.start} to {window.end} may span at most {window.max_days} days",
            field=window.end,
        )
    return start, end


# ------------------------------------------------------------------------------------- rendering
def sql_string(text: str) -> str:
    """A SQL string literal. Callers pass validated text; quotes are doubled all the same."""
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: ParamValue) -> str:
    """The SQL literal of a validated value, the same in DuckDB and Trino."""
    if isinstance(value, datetime):  # before date: a datetime is a date
        stamp = value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
        return f"TIMESTAMP '{stamp}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool):  # pragma: no cover - no boolean parameters
        raise TypeError("no boolean parameters")
    if isinstance(value, int):
        return str(value)
    return sql_string(value)


def partition_predicate(table: LakeTable, first_day: date, last_day: date) -> str:
    """A predicate on ``table``'s partition columns selecting the days ``first_day..last_day``.

    Written with plain comparisons on the partition columns so that Trino derives a partition
    domain from it (partition projection then enumerates only those partitions) and DuckDB
    pushes it into the dataset scan.
    """
    names = {partition.name: partition for partition in table.partitions}
    if {"year", "month", "day"} <= names.keys():
        months: list[str] = []
        cursor = first_day
        while cursor <= last_day:
            month_end = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            until = min(month_end, last_day)
            months.append(
                f'("year" = {cursor.year} AND "month" = {cursor.month} '
                f'AND "day" BETWEEN {cursor.day} AND {until.day})'
            )
            cursor = until + timedelta(days=1)
        return f'"year" BETWEEN {first_day.year} AND {last_day.year} AND ({" OR ".join(months)})'
    dated = [partition for partition in table.partitions if partition.projection_type == "date"]
    if len(dated) == 1 and dated[0].date_format == "yyyy-MM-dd":
        first, last = sql_string(first_day.isoformat()), sql_string(last_day.isoformat())
        return f'"{dated[0].name}" BETWEEN {first} AND {last}'
    raise ValueError(f"table {table.name} has no day partitions")  # pragma: no cover - a definition error


def json_safe(value: object) -> JsonScalar:
    """A value as JSON has it: dates and timestamps as ISO strings, decimals as floats, NaN as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# ------------------------------------------------------------------------------------- engines
@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[JsonScalar]]


# ------------------------------------------------------------------------------------- the queries
_METER = Parameter(
    "meter_id", ParamType.METER_ID, "the meter: a HES device UUID or a London id such as MAC000002"
)
_START_DATE = Parameter("start_date", ParamType.DATE, "first day, YYYY-MM-DD (UTC)")
_END_DATE = Parameter("end_date", ParamType.DATE, "last day, inclusive, YYYY-MM-DD (UTC)")
_START = Parameter("start", ParamType.TIMESTAMP, "window start, inclusive, ISO 8601 (UTC)")
_END = Parameter("end", ParamType.TIMESTAMP, "window end, exclusive, ISO 8601 (UTC)")

LAKE_STATS = NamedQuery(
    "lake_stats",
    "Per reading type: hourly partitions present, rows, first and last reading time.",
    """
SELECT reading_type,
       count(DISTINCT CAST("year" AS BIGINT) * 1000000 + "month" * 10000 + "day" * 100 + "hour")
         AS partitions,
       count(*) AS row_count,
       min(reading_date_time) AS first_reading,
       max(reading_date_time) AS last_reading
FROM readings
GROUP BY reading_type
ORDER BY reading_type
""".strip(),
)

DAILY_CONSUMPTION = NamedQuery(
    "daily_consumption",
    "A meter's energy per UTC day in kWh: 0.25 h x each 15-minute kW reading (reading_type kw, the "
    "HES meters) plus each interval kWh reading as metered (reading_type kwh, the London meters). "
    "A reading counts on the day of its reading_date_time; days without readings are absent.",
    """
SELECT CAST(reading_date_time AS DATE) AS reading_date,
       {kw_interval_hours} * coalesce(sum(CASE WHEN reading_type = 'kw' THEN reading_value END), 0)
         + coalesce(sum(CASE WHEN reading_type = 'kwh' THEN reading_value END), 0) AS kwh,
       sum(CASE WHEN reading_type = 'kw' THEN 1 ELSE 0 END) AS kw_readings,
       sum(CASE WHEN reading_type = 'kwh' THEN 1 ELSE 0 END) AS kwh_readings
FROM readings
WHERE reading_type IN ('kw', 'kwh')
  AND {partitions}
  AND reading_date_time >= {window_start} AND reading_date_time < {window_end}
  AND meter_id = {meter_id}
GROUP BY CAST(reading_date_time AS DATE)
ORDER BY reading_date
""".strip(),
    (_METER, _START_DATE, _END_DATE),
    Window("start_date", "end_date", max_days=366, table=READINGS),
)

HOURLY_FLEET_LOAD = NamedQuery(
    "hourly_fleet_load",
    "Per UTC hour in [start, end): the sum of every meter's kW readings, its energy in kWh "
    "(0.25 h x that sum) and how many meters reported.",
    """
SELECT date_trunc('hour', reading_date_time) AS hour_start,
       sum(reading_value) AS total_kw,
       {kw_interval_hours} * sum(reading_value) AS kwh,
       count(DISTINCT meter_id) AS meter_count
FROM readings
WHERE reading_type = 'kw'
  AND {partitions}
  AND reading_date_time >= {window_start} AND reading_date_time < {window_end}
GROUP BY date_trunc('hour', reading_date_time)
ORDER BY hour_start
""".strip(),
    (_START, _END),
    Window("start", "end", max_days=92, table=READINGS),
)

METER_READINGS = NamedQuery(
    "meter_readings",
    f"One meter's readings of one type in [start, end), oldest first, at most {MAX_READINGS_ROWS:,} rows.",
    """
SELECT meter_id, reading_type, reading_date_time, reading_value, unit, obis_code, phase, reading_source
FROM readings
WHERE reading_type = {reading_type}
  AND {partitions}
  AND reading_date_time >= {window_start} AND reading_date_time < {window_end}
  AND meter_id = {meter_id}
ORDER BY reading_date_time, reading_source
LIMIT {limit}
""".strip(),
    (
        _METER,
        _START,
        _END,
        Parameter("reading_type", ParamType.READING_TYPE, f"one of {', '.join(READING_TYPE_NAMES)}"),
        Parameter(
            "limit",
            ParamType.INT,
            "most rows to return",
            default=str(MAX_READINGS_ROWS),
            minimum=1,
            maximum=MAX_READINGS_ROWS,
        ),
    ),
    Window("start", "end", max_days=31, table=READINGS),
)

WEATHER_DAILY = NamedQuery(
    "weather_daily",
    "Per day from start_date to end_date: minimum, mean and maximum temperature (°C) and observations.",
    """
SELECT "date" AS observation_date,
       min(temperature_c) AS min_temperature_c,
       avg(temperature_c) AS avg_temperature_c,
       max(temperature_c) AS max_temperature_c,
       count(*) AS observations
FROM weather
WHERE {partitions}
GROUP BY "date"
ORDER BY observation_date
""".strip(),
    (_START_DATE, _END_DATE),
    Window("start_date", "end_date", max_days=366, table=WEATHER),
)

NAMED_QUERIES: Mapping[str, NamedQuery] = {
    query.name: query
    for query in (LAKE_STATS, DAILY_CONSUMPTION, HOURLY_FLEET_LOAD, METER_READINGS, WEATHER_DAILY)
}


def named_query(name: str) -> NamedQuery:
    try:
        return NAMED_QUERIES[name]
    except KeyError:
        raise NotFound(
            f"no query named {_preview(name)}; known queries: {', '.join(sorted(NAMED_QUERIES))}",
            field="query",
        ) from None


def list_named_queries() -> list[dict[str, Any]]:
    return [query.describe() for query in NAMED_QUERIES.values()]


def run_named_query(name: str, params: Mapping[str, str], engine: QueryEngine) -> dict[str, Any]:
    """Validate, render and run one named query; the answer is JSON-ready."""
    rendered = named_query(name).render(params)
    result = engine.run(rendered.sql)
    return {
        "query": rendered.name,
        "engine": engine.name,
        "parameters": rendered.parameters,
        "columns": list(result.columns),
        "rows": [[json_safe(value) for value in row] for row in result.rows],
        "row_count": len(result.rows),
    }


def _preview(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")
