"""Fill a local historian with the HES simulator's readings, for the on-premises worker to export.

The historian is named by the worker's own URLs (``MF_HISTORIAN_URL``): a SQL database
(``postgresql+psycopg://...``, ``sqlite:///...``) gets the ``readings`` table of
:func:`onprem_worker.historians.create_schema`; a CSV directory (``csv:///path``) gets one
headerless HES file per seeded window. Seeding a window again replaces it, so a seed is
idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Table, and_, create_engine, delete

from meterflow.hes.domain.fleet import Fleet
from onprem_worker.historians import HISTORIAN_SCHEMES, WIDE_COLUMNS, WIDE_SCHEMA, create_schema
from onprem_worker.jobs import CSV_WRITE_OPTIONS

SEED_CHUNK_RECORDS = 200_000
_SEED_FILE_TIME = "%Y%m%dT%H%M%S"
_SEED_FILE = re.compile(r"^hes-(\d{8}T\d{6})--(\d{8}T\d{6})\.csv$")


def seed_historian(
    url: str, fleet: Fleet, start: datetime, end: datetime, meter_ids: Sequence[str] | None = None
) -> int:
    """Replace the readings of [start, end) (of ``meter_ids``, or every meter) with the fleet's.

    Returns how many readings were written.
    """
    if end <= start:
        raise ValueError("end must be after start")
    batches = fleet_batches(fleet, start, end, meter_ids)
    if url.startswith("csv:///"):
        return _seed_csv_directory(Path(url.removeprefix("csv://")), batches, start, end)
    if url.startswith(HISTORIAN_SCHEMES):
        return _seed_sql(url, batches, start, end, meter_ids)
    raise ValueError(f"cannot seed {url.split(':', 1)[0][:40]!r}: use one of {', '.join(HISTORIAN_SCHEMES)}")


def fleet_batches(
    fleet: Fleet, start: datetime, end: datetime, meter_ids: Sequence[str] | None = None
) -> Iterator[pa.Table]:
    """The fleet's readings in [start, end) as wide Arrow tables of bounded size, in API order."""
    window = fleet.window(start, end)
    meters = None if meter_ids is None else pa.array(sorted(set(meter_ids)), type=pa.string())
    for first in range(0, window.record_count, SEED_CHUNK_RECORDS):
        table = fleet.records(window, first, SEED_CHUNK_RECORDS).to_arrow()
        if meters is not None:
            table = table.filter(pc.is_in(table.column("device_id"), value_set=meters))
        if table.num_rows:
            yield table


def _seed_sql(
    url: str, batches: Iterator[pa.Table], start: datetime, end: datetime, meter_ids: Sequence[str] | None
) -> int:
    engine = create_engine(url)
    try:
        table = create_schema(engine)
        # One transaction: a failed seed leaves the window as it was.
        with engine.begin() as connection:
            window = and_(table.c.time >= start, table.c.time < end)
            if meter_ids is not None:
                window = and_(window, table.c.device_id.in_(sorted(set(meter_ids))))
            connection.execute(delete(table).where(window))
            if connection.dialect.name == "postgresql":
                return _copy_into_postgresql(connection, table, batches)
            return _insert_rows(connection, table, batches)
    finally:
        engine.dispose()


def _copy_into_postgresql(connection: Connection, table: Table, batches: Iterator[pa.Table]) -> int:
    """COPY FROM STDIN in CSV: the fastest bulk path into PostgreSQL (psycopg 3's copy API)."""
    name = connection.dialect.identifier_preparer.format_table(table)
    columns = ", ".join(WIDE_COLUMNS)
    rows = 0
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"COPY needs psycopg 3 (postgresql+psycopg://), not {type(driver).__name__}")
    with driver.cursor() as cursor, cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for batch in batches:
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(batch, sink, CSV_WRITE_OPTIONS)
            copy.write(sink.getvalue().to_pybytes())
            rows += batch.num_rows
    return rows


def _insert_rows(connection: Connection, table: Table, batches: Iterator[pa.Table]) -> int:
    """executemany through SQLAlchemy: portable to any dialect (SQLite is the embedded default)."""
    rows = 0
    for batch in batches:
        connection.execute(table.insert(), batch.to_pylist())
        rows += batch.num_rows
    return rows


def _seed_csv_directory(directory: Path, batches: Iterator[pa.Table], start: datetime, end: datetime) -> int:
    """One file per window; a file for another, overlapping window is refused, since replacing it
    would delete readings outside this window."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"hes-{start.strftime(_SEED_FILE_TIME)}--{end.strftime(_SEED_FILE_TIME)}.csv"
    for other in directory.glob("hes-*.csv"):
        match = _SEED_FILE.match(other.name)
        if match is None or other == path:
            continue
        other_start, other_end = (datetime.strptime(value, _SEED_FILE_TIME) for value in match.groups())
        if other_start < end and start < other_end:
            raise ValueError(f"{other.name} overlaps [{start}, {end}): seed whole windows or remove it")
    partial = path.with_suffix(".csv.partial")  # invisible to the historian until complete
    rows = 0
    with pa_csv.CSVWriter(str(partial), WIDE_SCHEMA, write_options=CSV_WRITE_OPTIONS) as writer:
        for batch in batches:
            writer.write_table(batch)
            rows += batch.num_rows
    partial.replace(path)
    return rows
