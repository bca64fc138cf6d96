"""The simulated network topology: shape, hierarchy integrity, geography and determinism."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from meterflow.hes.domain.fleet import Fleet, FleetConfig, MeterClass
from meterflow.lake.domain.catalog import TOPOLOGY_ASSETS, TOPOLOGY_METERS, LakeTable
from meterflow.lake.domain.topology import (
    GRID_ID,
    SUBSTATION_COUNT,
    TERRITORY_CENTRE,
    TERRITORY_RADIUS_KM,
    Topology,
    build_topology,
    distance_km,
    service_transformer_count,
    topology_object_keys,
)

GLUE_TO_ARROW = {"string": "string", "double": "double"}
LEVEL_BELOW = {
    "grid": "substation",
    "substation": "distribution_transformer",
    "distribution_transformer": "service_transformer",
}


@pytest.fixture(scope="module")
def topology(fleet: Fleet) -> Topology:
    return build_topology(fleet)


def assert_consistent(topology: Topology, fleet: Fleet) -> None:
    """Every meter hangs off existing assets, every asset off an existing parent one level up."""
    assets = {row["asset_id"]: row for row in topology.assets.to_pylist()}
    meters = topology.meters.to_pylist()
    assert len(assets) == topology.assets.num_rows, "asset ids are unique"
    assert sorted(row["meter_id"] for row in meters) == sorted(fleet.device_id_list)
    for asset in assets.values():
        if asset["asset_type"] == "grid":
            assert asset["parent_id"] == ""
        else:
            parent = assets[asset["parent_id"]]
            assert LEVEL_BELOW[parent["asset_type"]] == asset["asset_type"]
    for meter in meters:
        service = assets[meter["service_transformer_id"]]
        assert service["asset_type"] == "service_transformer"
        assert service["parent_id"] == meter["distribution_transformer_id"]
        assert assets[meter["distribution_transformer_id"]]["parent_id"] == meter["substation_id"]
        assert assets[meter["substation_id"]]["parent_id"] == meter["grid_id"] == GRID_ID
    served = Counter(meter["service_transformer_id"] for meter in meters)
    service_ids = {key for key, row in assets.items() if row["asset_type"] == "service_transformer"}
    assert set(served) == service_ids, "every service transformer serves at least one meter"


def assert_schema_matches(schema: pa.Schema, lake_table: LakeTable) -> None:
    assert schema.names == [column.name for column in lake_table.columns]
    assert [str(field.type) for field in schema] == [GLUE_TO_ARROW[c.glue_type] for c in lake_table.columns]


def test_tables_match_the_catalog_columns_and_types_exactly(topology: Topology) -> None:
    # GIVEN the catalog's topology tables (Glue and DuckDB read them with these columns)
    # THEN the built tables have exactly those columns, in order, with the mapped Arrow types
    assert_schema_matches(topology.meters.schema, TOPOLOGY_METERS)
    assert_schema_matches(topology.assets.schema, TOPOLOGY_ASSETS)


def test_object_keys_are_the_catalog_prefixes_with_one_parquet_object() -> None:
    assert topology_object_keys() == ("topology/meters/data.parquet", "topology/assets/data.parquet")
    assert topology_object_keys()[0].startswith(TOPOLOGY_METERS.prefix + "/")
    assert topology_object_keys()[1].startswith(TOPOLOGY_ASSETS.prefix + "/")


def test_reference_shape_for_the_default_fleet(default_fleet: Fleet) -> None:
    # GIVEN the default 10,000-meter fleet (the reference MDA sample had 1,669 service transformers)
    topology = build_topology(default_fleet)
    # WHEN the assets are counted by type
    counts = Counter(topology.assets.column("asset_type").to_pylist())
    # THEN one grid, six substations with one distribution transformer each, ~meters/6 service ones
    assert counts == {
        "grid": 1,
        "substation": 6,
        "distribution_transformer": 6,
        "service_transformer": 1_667,
    }
    assert topology.meters.num_rows == 10_000
    assert_consistent(topology, default_fleet)


def test_hierarchy_is_consistent(topology: Topology, fleet: Fleet) -> None:
    assert_consistent(topology, fleet)
    assert topology.meters.num_rows == fleet.config.meter_count


def test_ids_are_readable_and_the_grid_has_no_parent(topology: Topology) -> None:
    rows = topology.assets.to_pylist()
    patterns = {
        "grid": r"GRID-1",
        "substation": r"SUB-0[1-6]",
        "distribution_transformer": r"DT-0[1-6]",
        "service_transformer": r"ST-\d{5}",
    }
    for row in rows:
        assert re.fullmatch(patterns[row["asset_type"]], row["asset_id"]), row
    assert [row["parent_id"] for row in rows if row["asset_type"] == "grid"] == [""]
    # each substation has exactly one distribution transformer, numbered like it
    feeds = {
        row["parent_id"]: row["asset_id"] for row in rows if row["asset_type"] == "distribution_transformer"
    }
    assert feeds == {f"SUB-0{i}": f"DT-0{i}" for i in range(1, 7)}


def test_meters_are_ordered_by_meter_id(topology: Topology) -> None:
    ids = topology.meters.column("meter_id").to_pylist()
    assert ids == sorted(ids)


def test_industrial_meters_have_a_transformer_of_their_own(topology: Topology, fleet: Fleet) -> None:
    # GIVEN the meters and their classes
    meters = topology.meters.to_pylist()
    served = Counter(meter["service_transformer_id"] for meter in meters)
    industrial = {
        fleet.device_id_list[i] for i in np.flatnonzero(fleet.meter_class == MeterClass.INDUSTRIAL).tolist()
    }
    assert industrial, "the fixture fleet has industrial meters"
    # THEN each industrial meter is alone on its service transformer
    for meter in meters:
        if meter["meter_id"] in industrial:
            assert served[meter["service_transformer_id"]] == 1


def test_coordinates_are_finite_and_inside_the_territory(topology: Topology) -> None:
    centre_lat, centre_lon = TERRITORY_CENTRE
    for table in (topology.meters, topology.assets):
        lat = table.column("latitude").to_numpy()
        lon = table.column("longitude").to_numpy()
        assert np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))
        assert np.all(distance_km(lat, lon, centre_lat, centre_lon) <= TERRITORY_RADIUS_KM)


def test_assets_sit_near_their_parents_and_meters_near_their_transformer(topology: Topology) -> None:
    # GIVEN every asset's and meter's position
    assets = {row["asset_id"]: row for row in topology.assets.to_pylist()}

    def gap(row: dict[str, object], parent_id: str) -> float:
        parent = assets[parent_id]
        return float(
            distance_km(
                np.array([row["latitude"]]),
                np.array([row["longitude"]]),
                float(parent["latitude"]),
                float(parent["longitude"]),
            )[0]
        )

    # THEN distribution transformers stand by their substation, service transformers within a few km
    for row in assets.values():
        if row["asset_type"] == "distribution_transformer":
            assert gap(row, row["parent_id"]) <= 0.31
        if row["asset_type"] == "service_transformer":
            substation = assets[row["parent_id"]]["parent_id"]
            assert gap(row, substation) <= 3.71
    # AND meters are within 150 m of their service transformer
    for meter in topology.meters.to_pylist():
        assert gap(meter, meter["service_transformer_id"]) <= 0.151
    # AND substations are spread out around the centre
    subs = [row for row in assets.values() if row["asset_type"] == "substation"]
    for i, first in enumerate(subs):
        for second in subs[i + 1 :]:
            assert gap(first, second["asset_id"]) > 2.0


def test_same_fleet_config_gives_the_same_topology(fleet: Fleet, topology: Topology) -> None:
    # GIVEN a fresh fleet with the same configuration
    twin = build_topology(Fleet(fleet.config))
    # THEN both tables are identical
    assert twin.meters.equals(topology.meters)
    assert twin.assets.equals(topology.assets)


def test_a_different_seed_draws_a_different_map(fleet: Fleet, topology: Topology) -> None:
    other = build_topology(
        Fleet(FleetConfig(meter_count=fleet.config.meter_count, seed=fleet.config.seed + 1))
    )
    assert not np.allclose(
        other.assets.column("latitude").to_numpy(), topology.assets.column("latitude").to_numpy()
    )


@pytest.mark.parametrize("meter_count", [1, 2, 5, 6, 7, 13, 37, 100])
def test_small_fleets_still_form_a_complete_hierarchy(meter_count: int) -> None:
    # GIVEN a fleet too small for every substation to get a transformer
    fleet = Fleet(FleetConfig(meter_count=meter_count, seed=meter_count))
    # WHEN its topology is built
    topology = build_topology(fleet)
    # THEN the counts follow the meter count and every meter and asset hangs off the hierarchy
    types = Counter(topology.assets.column("asset_type").to_pylist())
    assert types["service_transformer"] == service_transformer_count(meter_count)
    assert types["substation"] == types["distribution_transformer"] == SUBSTATION_COUNT
    assert_consistent(topology, fleet)
