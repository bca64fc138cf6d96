"""The lake's tables, defined once for both query engines.

In AWS these become Glue tables with partition projection (``terraform/modules/catalog``;
``tests/deploy`` compares the applied tables with this module); locally the DuckDB engine builds
views over the same object layout. Column types use Glue/Hive names.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterflow.lake.domain.schema import (
    READING_TYPE_NAMES,
    READINGS_PREFIX,
    TOPOLOGY_PREFIX,
    WEATHER_PREFIX,
)


@dataclass(frozen=True)
class Column:
    name: str
    glue_type: str  # string, double, bigint, int, timestamp, date


@dataclass(frozen=True)
class PartitionColumn:
    name: str
    glue_type: str
    # Partition projection: "enum" (values), "integer" (range, digits) or "date" (range, format).
    projection_type: str
    values: tuple[str, ...] = ()
    range: tuple[str, str] = ("", "")
    digits: int = 0
    date_format: str = ""


@dataclass(frozen=True)
class LakeTable:
    name: str
    prefix: str  # under the integrated bucket, no leading or trailing slash
    columns: tuple[Column, ...]
    partitions: tuple[PartitionColumn, ...] = ()

    @property
    def location_template(self) -> str:
        """Where partition projection finds a partition, relative to the bucket root."""
        parts = "/".join(f"{p.name}=${{{p.name}}}" for p in self.partitions)
        return f"{self.prefix}/{parts}" if parts else self.prefix


READINGS = LakeTable(
    "readings",
    READINGS_PREFIX,
    (
        Column("meter_id", "string"),
        Column("reading_value", "double"),
        Column("reading_date_time", "timestamp"),
        Column("unit", "string"),
        Column("obis_code", "string"),
        Column("phase", "string"),
        Column("reading_source", "string"),
    ),
    (
        PartitionColumn("reading_type", "string", "enum", values=READING_TYPE_NAMES),
        PartitionColumn("year", "int", "integer", range=("2000", "2100"), digits=4),
        PartitionColumn("month", "int", "integer", range=("1", "12"), digits=2),
        PartitionColumn("day", "int", "integer", range=("1", "31"), digits=2),
        PartitionColumn("hour", "int", "integer", range=("0", "23"), digits=2),
    ),
)

WEATHER = LakeTable(
    "weather",
    WEATHER_PREFIX,
    (
        Column("observation_time", "timestamp"),
        Column("temperature_c", "double"),
        Column("source", "string"),
    ),
    (PartitionColumn("date", "string", "date", range=("2000-01-01", "NOW"), date_format="yyyy-MM-dd"),),
)

TOPOLOGY_METERS = LakeTable(
    "topology_meters",
    f"{TOPOLOGY_PREFIX}/meters",
    (
        Column("meter_id", "string"),
        Column("service_transformer_id", "string"),
        Column("distribution_transformer_id", "string"),
        Column("substation_id", "string"),
        Column("grid_id", "string"),
        Column("latitude", "double"),
        Column("longitude", "double"),
    ),
)

TOPOLOGY_ASSETS = LakeTable(
    "topology_assets",
    f"{TOPOLOGY_PREFIX}/assets",
    (
        Column("asset_id", "string"),
        Column("asset_type", "string"),
        Column("parent_id", "string"),
        Column("name", "string"),
        Column("latitude", "double"),
        Column("longitude", "double"),
    ),
)

LCL_HOUSEHOLDS = LakeTable(
    "lcl_households",
    f"{TOPOLOGY_PREFIX}/lcl_households",
    (
        Column("meter_id", "string"),
        Column("std_or_tou", "string"),
        Column("acorn", "string"),
        Column("acorn_grouped", "string"),
    ),
)

LAKE_TABLES: tuple[LakeTable, ...] = (READINGS, WEATHER, TOPOLOGY_METERS, TOPOLOGY_ASSETS, LCL_HOUSEHOLDS)


def lake_table(name: str) -> LakeTable:
    return next(table for table in LAKE_TABLES if table.name == name)
