"""SqlHistorian and seed_historian against the local PostgreSQL, in a schema of their own per run."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from sqlalchemy import create_engine

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.localcloud.historian_seed import seed_historian
from onprem_worker.historians import WIDE_SCHEMA, SqlHistorian, historian_from_url
from onprem_worker.jobs import CSV_WRITE_OPTIONS

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
DAY_START, DAY_END = datetime(2023, 3, 1), datetime(2023, 3, 2)


def connect() -> psycopg.Connection:
    return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)


def postgres_unreachable() -> str | None:
    try:
        connect().close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is unreachable at {SERVER}: {exc}"
    return None


pytestmark = pytest.mark.skipif(postgres_unreachable() is not None, reason=str(postgres_unreachable()))


@pytest.fixture(scope="module")
def historian_url() -> Iterator[str]:
    """A URL whose connections see a schema of this run only (search_path), dropped afterwards."""
    schema = f"onprem_test_{uuid.uuid4().hex[:12]}"
    with connect() as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with connect() as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def fleet_day(historian_url: str) -> tuple[Fleet, float]:
    """The default 10,000-meter fleet's 2023-03-01 seeded, and how long the seed took."""
    fleet = Fleet(FleetConfig())
    started = time.perf_counter()
    assert seed_historian(historian_url, fleet, DAY_START, DAY_END) == 958_080
    return fleet, time.perf_counter() - started


def test_a_day_of_10000_meters_seeds_well_under_a_minute(fleet_day: tuple[Fleet, float]) -> None:
    _, seconds = fleet_day
    assert seconds < 30, f"seeding 958,080 readings took {seconds:.1f} s"


def test_the_day_reads_back_as_the_simulators_hes_file_byte_for_byte(
    historian_url: str, fleet_day: tuple[Fleet, float]
) -> None:
    # GIVEN the seeded day WHEN it is streamed out in batches and written as the HES CSV
    fleet, _ = fleet_day
    historian = historian_from_url(historian_url, batch_rows=100_000)
    sink = pa.BufferOutputStream()
    batches = 0
    with pa_csv.CSVWriter(sink, WIDE_SCHEMA, write_options=CSV_WRITE_OPTIONS) as writer:
        for batch in historian.read(None, DAY_START, DAY_END):
            assert 0 < batch.num_rows <= 100_000
            writer.write_batch(batch)
            batches += 1
    # THEN it is exactly what the cloud's encoder makes of the same readings
    window = fleet.window(DAY_START, DAY_END)
    assert sink.getvalue().to_pybytes() == encode_csv(fleet.records(window, 0, window.record_count))
    assert batches >= 10


def test_a_meter_filter_and_window_are_applied_in_the_query(
    historian_url: str, fleet_day: tuple[Fleet, float]
) -> None:
    fleet, _ = fleet_day
    meters = fleet.device_id_list[:3]
    start, end = datetime(2023, 3, 1, 12), datetime(2023, 3, 1, 13)
    historian = SqlHistorian(create_engine(historian_url), batch_rows=5)
    batches = list(historian.read(meters, start, end))
    table = pa.Table.from_batches(batches, schema=WIDE_SCHEMA)
    assert all(batch.num_rows <= 5 for batch in batches)
    assert set(table.column("device_id").to_pylist()) <= set(meters)
    assert set(table.column("time").to_pylist()) == {
        datetime(2023, 3, 1, 12, minute) for minute in (0, 15, 30, 45)
    }
    keys = list(zip(table.column("time").to_pylist(), table.column("device_id").to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_seeding_an_hour_again_replaces_it(historian_url: str, fleet_day: tuple[Fleet, float]) -> None:
    # GIVEN the seeded day WHEN one hour of it is seeded again THEN the day still holds each reading once
    fleet, _ = fleet_day
    assert seed_historian(historian_url, fleet, datetime(2023, 3, 1, 5), datetime(2023, 3, 1, 6)) == 4 * 9_980
    with create_engine(historian_url).connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM readings").scalar_one()
    assert count == 958_080
