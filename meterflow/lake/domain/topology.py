"""The simulated fleet's network topology: grid, substations, transformers and where every meter sits.

The HES knows meters only; analytics (feeder load, outage localisation, transformer overload) needs
the hierarchy above them. This module derives one from the fleet, shaped like the reference utility's
MDA sample: one grid, six substations with one distribution transformer each, and a service transformer
per six meters on average (1,669 for 10,000 meters). Like the readings, the topology is a pure function
of the fleet configuration, so it is never stored anywhere but in the lake and can always be rebuilt.

Coordinates sit in a plausible service territory around :data:`TERRITORY_CENTRE`; positions come from
counter-based hashing (:mod:`meterflow.core.hashing`), never from the ``random`` module, so the same
seed draws the same map on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meterflow.core.hashing import uniform
from meterflow.hes import Fleet, MeterClass
from meterflow.lake.domain.catalog import TOPOLOGY_ASSETS, TOPOLOGY_METERS, LakeTable
from meterflow.lake.domain.schema import PARTITION_OBJECT_NAME

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# Central London (latitude, longitude): the simulator's temperate climate (mean 11 °C, coldest
# mid-January) is London's, so a real weather provider pointed here gives a comparable series.
TERRITORY_CENTRE: Final[tuple[float, float]] = (51.5074, -0.1278)
# Every asset and meter lies within this distance of the centre (see the radii below).
TERRITORY_RADIUS_KM: Final = 14.0
SUBSTATION_COUNT: Final = 6
METERS_PER_SERVICE_TRANSFORMER: Final = 6

GRID_ID: Final = "GRID-1"
ASSET_TYPES: Final[tuple[str, ...]] = (
    "grid",
    "substation",
    "distribution_transformer",
    "service_transformer",
)

TOPOLOGY_METERS_KEY: Final = f"{TOPOLOGY_METERS.prefix}/{PARTITION_OBJECT_NAME}"
TOPOLOGY_ASSETS_KEY: Final = f"{TOPOLOGY_ASSETS.prefix}/{PARTITION_OBJECT_NAME}"

# Substations ring the centre (spread out, one per 60° sector); a distribution transformer stands in
# its substation's yard, service transformers spread around their substation, meters hug their
# transformer. The radii add up to 13.15 km, inside TERRITORY_RADIUS_KM.
_SUBSTATION_RING_KM = (5.0, 9.0)
_SUBSTATION_JITTER_DEGREES = 30.0
_DISTRIBUTION_RADIUS_KM = 0.3
_SERVICE_RADIUS_KM = 3.7
_METER_RADIUS_KM = 0.15
_KM_PER_DEGREE_LATITUDE = 110.574
_KM_PER_DEGREE_LONGITUDE_AT_EQUATOR = 111.320


class _Stream(IntEnum):
    """Hash streams of the topology; never renumber (it would move every asset)."""

    SUBSTATION_RADIUS = 1101
    SUBSTATION_ANGLE = 1102
    DISTRIBUTION_POSITION = 1103
    SERVICE_POSITION = 1104
    SERVICE_SHARE = 1105
    METER_POSITION = 1106


_ARROW_TYPES: Final[dict[str, pa.DataType]] = {"string": pa.string(), "double": pa.float64()}


def arrow_schema(table: LakeTable) -> pa.Schema:
    """The Arrow schema of a catalog table, so writers cannot drift from the Glue/DuckDB definition."""
    fields = []
    for column in table.columns:
        if column.glue_type not in _ARROW_TYPES:
            raise ValueError(f"{table.name}.{column.name}: no Arrow type for {column.glue_type!r}")
        fields.append(pa.field(column.name, _ARROW_TYPES[column.glue_type], nullable=False))
    return pa.schema(fields)


TOPOLOGY_METERS_SCHEMA: Final = arrow_schema(TOPOLOGY_METERS)
TOPOLOGY_ASSETS_SCHEMA: Final = arrow_schema(TOPOLOGY_ASSETS)


@dataclass(frozen=True)
class Topology:
    """The two topology tables: one row per meter, one row per network asset."""

    meters: pa.Table  # TOPOLOGY_METERS_SCHEMA, ordered by meter_id
    assets: pa.Table  # TOPOLOGY_ASSETS_SCHEMA: the grid, substations, distribution then service transformers


def topology_object_keys() -> tuple[str, str]:
    """Object keys (meters, assets) of the two tables: one unpartitioned Parquet object each."""
    return TOPOLOGY_METERS_KEY, TOPOLOGY_ASSETS_KEY


def service_transformer_count(meter_count: int) -> int:
    return max(1, math.ceil(meter_count / METERS_PER_SERVICE_TRANSFORMER))


def substation_id(index: int) -> str:
    return f"SUB-{index + 1:02d}"


def distribution_transformer_id(index: int) -> str:
    return f"DT-{index + 1:02d}"


def service_transformer_ids(count: int) -> list[str]:
    # Five digits cover 600,000 meters; wider fleets get wider ids, still sorting in number order.
    width = max(5, len(str(count)))
    return [f"ST-{number:0{width}d}" for number in range(1, count + 1)]


def build_topology(fleet: Fleet) -> Topology:
    """The fleet's network: deterministic from its configuration (seed, meter count)."""
    seed = fleet.config.seed
    centre_lat, centre_lon = TERRITORY_CENTRE
    sub_index = np.arange(SUBSTATION_COUNT, dtype=np.int64)

    low, high = _SUBSTATION_RING_KM
    ring = low + (high - low) * uniform(seed, _Stream.SUBSTATION_RADIUS, sub_index)
    jitter = (uniform(seed, _Stream.SUBSTATION_ANGLE, sub_index) - 0.5) * _SUBSTATION_JITTER_DEGREES
    angle = np.radians(sub_index * (360.0 / SUBSTATION_COUNT) + jitter)
    centre_lats, centre_lons = np.full(SUBSTATION_COUNT, centre_lat), np.full(SUBSTATION_COUNT, centre_lon)
    sub_lat, sub_lon = _offset(centre_lats, centre_lons, ring * np.cos(angle), ring * np.sin(angle))
    dt_lat, dt_lon = _scatter(sub_lat, sub_lon, _DISTRIBUTION_RADIUS_KM, seed, _Stream.DISTRIBUTION_POSITION)

    st_count = service_transformer_count(fleet.config.meter_count)
    st_index = np.arange(st_count, dtype=np.int64)
    # Contiguous blocks of service transformers per substation keep ids readable: SUB-01 feeds the
    # lowest-numbered transformers. Fewer than six transformers leave some substations without load.
    st_substation = st_index * SUBSTATION_COUNT // st_count
    st_lat, st_lon = _scatter(
        sub_lat[st_substation], sub_lon[st_substation], _SERVICE_RADIUS_KM, seed, _Stream.SERVICE_POSITION
    )

    meter_st = _assign_meters(fleet, st_count)
    meter_lat, meter_lon = _scatter(
        st_lat[meter_st], st_lon[meter_st], _METER_RADIUS_KM, seed, _Stream.METER_POSITION
    )

    st_ids = np.array(service_transformer_ids(st_count))
    sub_ids = np.array([substation_id(i) for i in range(SUBSTATION_COUNT)])
    dt_ids = np.array([distribution_transformer_id(i) for i in range(SUBSTATION_COUNT)])

    order = fleet.meter_at_position  # meter indices in meter_id order
    meter_sub = st_substation[meter_st[order]]
    meters = pa.Table.from_arrays(
        [
            fleet.device_ids.take(pa.array(order)),
            pa.array(st_ids[meter_st[order]], type=pa.string()),
            pa.array(dt_ids[meter_sub], type=pa.string()),
            pa.array(sub_ids[meter_sub], type=pa.string()),
            pa.array(np.full(fleet.config.meter_count, GRID_ID), type=pa.string()),
            pa.array(meter_lat[order], type=pa.float64()),
            pa.array(meter_lon[order], type=pa.float64()),
        ],
        schema=TOPOLOGY_METERS_SCHEMA,
    )

    asset_ids = [GRID_ID, *sub_ids.tolist(), *dt_ids.tolist(), *st_ids.tolist()]
    asset_types = [
        ASSET_TYPES[0],
        *[ASSET_TYPES[1]] * SUBSTATION_COUNT,
        *[ASSET_TYPES[2]] * SUBSTATION_COUNT,
        *[ASSET_TYPES[3]] * st_count,
    ]
    parents = ["", *[GRID_ID] * SUBSTATION_COUNT, *sub_ids.tolist(), *dt_ids[st_substation].tolist()]
    names = [
        "Meterflow grid",
        *[f"Substation {i + 1:02d}" for i in range(SUBSTATION_COUNT)],
        *[f"Distribution transformer {i + 1:02d}" for i in range(SUBSTATION_COUNT)],
        *[f"Service transformer {asset_id.removeprefix('ST-')}" for asset_id in st_ids.tolist()],
    ]
    assets = pa.Table.from_arrays(
        [
            pa.array(asset_ids, type=pa.string()),
            pa.array(asset_types, type=pa.string()),
            pa.array(parents, type=pa.string()),
            pa.array(names, type=pa.string()),
            pa.array(np.concatenate([[centre_lat], sub_lat, dt_lat, st_lat]), type=pa.float64()),
            pa.array(np.concatenate([[centre_lon], sub_lon, dt_lon, st_lon]), type=pa.float64()),
        ],
        schema=TOPOLOGY_ASSETS_SCHEMA,
    )
    return Topology(meters=meters, assets=assets)


def _assign_meters(fleet: Fleet, st_count: int) -> I64:
    """The service transformer (0-based number) of each meter, in fleet index order.

    Industrial meters (100-400 kW connected load) each get a dedicated transformer, as they would in
    a real network; the other meters share the remaining transformers in groups of uneven size
    (weights in [0.5, 1.5), at least one meter each). Tiny fleets where that cannot add up to
    ``st_count`` transformers share them all. Transformers are numbered by their lowest meter index,
    so dedicated ones interleave with shared ones instead of clustering under the last substation.
    """
    n = fleet.config.meter_count
    industrial = fleet.meter_class == MeterClass.INDUSTRIAL
    dedicated = int(industrial.sum())
    shared = st_count - dedicated
    workable = dedicated > 0 and ((shared == 0 and dedicated == n) or 1 <= shared <= n - dedicated)
    if not workable:
        industrial = np.zeros(n, dtype=np.bool_)
        dedicated, shared = 0, st_count
    dedicated_meters = np.flatnonzero(industrial).astype(np.int64)
    shared_meters = np.flatnonzero(~industrial).astype(np.int64)

    anchors = [dedicated_meters]
    group_of_shared = np.empty(0, dtype=np.int64)
    if shared:
        spare = len(shared_meters) - shared  # meters beyond the one every shared transformer gets
        weight = 0.5 + uniform(fleet.config.seed, _Stream.SERVICE_SHARE, np.arange(shared))
        cumulative = np.concatenate([[0.0], np.cumsum(weight)]) / weight.sum()
        bounds = np.arange(shared + 1) + np.round(spare * cumulative).astype(np.int64)
        group_of_shared = np.searchsorted(bounds, np.arange(len(shared_meters)), side="right") - 1
        anchors.append(shared_meters[bounds[:-1]])
    # groups 0..dedicated-1 are the dedicated transformers, then the shared ones
    number_of_group = np.empty(st_count, dtype=np.int64)
    number_of_group[np.argsort(np.concatenate(anchors), kind="stable")] = np.arange(st_count)

    meter_st = np.empty(n, dtype=np.int64)
    meter_st[dedicated_meters] = number_of_group[:dedicated]
    meter_st[shared_meters] = number_of_group[dedicated + group_of_shared]
    return meter_st


def _scatter(lat: F64, lon: F64, radius_km: float, seed: int, stream: int) -> tuple[F64, F64]:
    """Points uniformly distributed over a disc of ``radius_km`` around each (lat, lon)."""
    index = np.arange(len(lat), dtype=np.int64)
    distance = radius_km * np.sqrt(uniform(seed, stream, index, 0))  # sqrt: uniform over the area
    bearing = 2.0 * np.pi * uniform(seed, stream, index, 1)
    return _offset(lat, lon, distance * np.sin(bearing), distance * np.cos(bearing))


def _offset(lat: F64, lon: F64, east_km: F64, north_km: F64) -> tuple[F64, F64]:
    """Move points by kilometres: the equirectangular approximation is exact enough at city scale."""
    new_lat = lat + north_km / _KM_PER_DEGREE_LATITUDE
    new_lon = lon + east_km / (_KM_PER_DEGREE_LONGITUDE_AT_EQUATOR * np.cos(np.radians(lat)))
    return np.asarray(new_lat, dtype=np.float64), np.asarray(new_lon, dtype=np.float64)


def distance_km(lat: F64, lon: F64, from_lat: float, from_lon: float) -> F64:
    """Approximate ground distance (equirectangular), for checks and analytics at city scale."""
    north = (lat - from_lat) * _KM_PER_DEGREE_LATITUDE
    east = (lon - from_lon) * _KM_PER_DEGREE_LONGITUDE_AT_EQUATOR * np.cos(np.radians(from_lat))
    return np.asarray(np.hypot(north, east), dtype=np.float64)
