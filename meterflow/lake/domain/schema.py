"""The lake's schemas and object layout (seed 001, tables 1 and 2), in one place.

Every writer (range workers, the late-read consumer, the London transformer, the weather and
topology dataflows) and every reader (DuckDB views, Glue tables) takes its names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

# Seed 001, table 1: the HES file's columns, in order (the file is headerless). Defined once, in the
# on-premises worker's package, which ships without meterflow and so cannot import it from here.
from onprem_worker.wide_schema import WIDE_COLUMNS as WIDE_COLUMNS
from onprem_worker.wide_schema import WIDE_SCHEMA as WIDE_SCHEMA


@dataclass(frozen=True)
class ReadingType:
    """One measured quantity: a ``reading_type`` partition of the integrated zone."""

    name: str
    unit: str
    obis_code: str  # IEC 62056-61 (OBIS) code of the quantity
    phase: str


# The six quantities of a HES reading, in the wide file's column order, and the London dataset's
# half-hourly energy. ``load`` is the meter's rated (connected) load; ``kwh`` is interval energy.
HES_READING_TYPES: tuple[ReadingType, ...] = (
    ReadingType("load", "kW", "1.0.1.35.0.255", "total"),
    ReadingType("crrnt", "A", "1.0.31.7.0.255", "L1"),
    ReadingType("pf", "", "1.0.33.7.0.255", "L1"),
    ReadingType("kva", "kVA", "1.0.9.7.0.255", "total"),
    ReadingType("kw", "kW", "1.0.1.7.0.255", "total"),
    ReadingType("vltg", "kV", "1.0.32.7.0.255", "L1"),
)
KWH = ReadingType("kwh", "kWh", "1.0.1.8.0.255", "total")
READING_TYPES: tuple[ReadingType, ...] = (*HES_READING_TYPES, KWH)
READING_TYPE_NAMES: tuple[str, ...] = tuple(kind.name for kind in READING_TYPES)

# Seed 001, table 2: the columns stored in each Parquet file. The partition columns
# (reading_type, year, month, day, hour) live in the object path, hive style.
LONG_SCHEMA = pa.schema(
    [
        pa.field("meter_id", pa.string(), nullable=False),
        pa.field("reading_value", pa.float64(), nullable=False),
        pa.field("reading_date_time", pa.timestamp("us"), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("obis_code", pa.string(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("reading_source", pa.string(), nullable=False),
    ]
)
PARTITION_COLUMNS: tuple[str, ...] = ("reading_type", "year", "month", "day", "hour")
# What a parser stages per long row: only what varies. year..hour derive from reading_date_time;
# unit, obis_code and phase follow from the reading type and reading_source from the file, so
# they are written with the partition, not carried through staging.
STAGED_SCHEMA = pa.schema(
    [
        LONG_SCHEMA.field("meter_id"),
        LONG_SCHEMA.field("reading_value"),
        LONG_SCHEMA.field("reading_date_time"),
        pa.field("reading_type", pa.string(), nullable=False),
    ]
)

READINGS_PREFIX = "readings/parquet"
WEATHER_PREFIX = "weather"
TOPOLOGY_PREFIX = "topology"
PARTITION_OBJECT_NAME = "data.parquet"
PARQUET_COMPRESSION = "zstd"

# EventBridge: the lake announces late reads; a rule forwards them to the late-read consumer.
LAKE_EVENT_SOURCE = "meterflow.lake"
LATE_READS_DETAIL_TYPE = "LateReadsStaged"

WEATHER_SCHEMA = pa.schema(
    [
        pa.field("observation_time", pa.timestamp("us"), nullable=False),
        pa.field("temperature_c", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One partition of the integrated zone: a reading type and an hour (UTC)."""

    reading_type: str
    year: int
    month: int
    day: int
    hour: int

    @classmethod
    def of(cls, reading_type: str, moment: datetime) -> PartitionKey:
        return cls(reading_type, moment.year, moment.month, moment.day, moment.hour)

    @property
    def prefix(self) -> str:
        return (
            f"{READINGS_PREFIX}/reading_type={self.reading_type}/year={self.year:04d}/"
            f"month={self.month:02d}/day={self.day:02d}/hour={self.hour:02d}/"
        )

    @property
    def object_key(self) -> str:
        """The partition's single object: rewriting it is one atomic PUT."""
        return self.prefix + PARTITION_OBJECT_NAME

    @property
    def hour_start(self) -> datetime:
        return datetime(self.year, self.month, self.day, self.hour)

    def to_token(self) -> str:
        """A compact, order-preserving string for workflow state and event payloads."""
        return f"{self.reading_type}/{self.year:04d}{self.month:02d}{self.day:02d}{self.hour:02d}"

    @classmethod
    def from_token(cls, token: str) -> PartitionKey:
        reading_type, _, stamp = token.partition("/")
        if reading_type not in READING_TYPE_NAMES or len(stamp) != 10 or not stamp.isdigit():
            raise ValueError(f"not a partition token: {token!r}")
        return cls(reading_type, int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[8:10]))


def weather_object_key(day: datetime) -> str:
    return f"{WEATHER_PREFIX}/date={day:%Y-%m-%d}/{PARTITION_OBJECT_NAME}"
