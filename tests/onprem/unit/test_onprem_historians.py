"""Historian adapters (SQLite through SQLAlchemy, CSV directory) and the seeding that fills them.

Every adapter states the same contract: the wide schema, (time, device_id) order, the meter
filter, [start, end) bounds and batches of at most ``batch_rows`` rows. A new adapter (PI Web
API, OPC-UA) can be added to the ``historian_url`` fixture's parameters.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import EventRates, Fleet, FleetConfig
from meterflow.localcloud.historian_seed import fleet_batches, seed_historian
from onprem_worker import historians
from onprem_worker.historians import (
    WIDE_SCHEMA,
    CsvDirectoryHistorian,
    Historian,
    HistorianOrderError,
    SqlHistorian,
    UnsupportedHistorian,
    historian_from_url,
    naive_utc,
)

START = datetime(2023, 1, 2, 0, 0)
END = datetime(2023, 1, 2, 3, 0)  # 12 slots

HistorianFactory = Callable[..., Historian]


@pytest.fixture(scope="module")
def small_fleet() -> Fleet:
    # Two meters miss every slot, so the expected rows are not a plain grid.
    return Fleet(FleetConfig(meter_count=40, seed=11, rates=EventRates(missing_fraction=0.05)))


@pytest.fixture(scope="module", params=["sqlite", "csv"])
def historian_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, small_fleet: Fleet
) -> str:
    """A historian of each kind, seeded with the window [START, END) of the small fleet."""
    directory = tmp_path_factory.mktemp(request.param)
    url = f"sqlite:///{directory}/historian.db" if request.param == "sqlite" else f"csv://{directory}"
    seed_historian(url, small_fleet, START, END)
    return url


@pytest.fixture
def open_historian(historian_url: str) -> HistorianFactory:
    def build(batch_rows: int = 1_000) -> Historian:
        return historian_from_url(historian_url, batch_rows=batch_rows)

    return build


def expected(fleet: Fleet, start: datetime, end: datetime, meter_ids: list[str] | None = None) -> pa.Table:
    return pa.concat_tables([*fleet_batches(fleet, start, end, meter_ids), WIDE_SCHEMA.empty_table()])


def read_all(historian: Historian, meter_ids: list[str] | None, start: datetime, end: datetime) -> pa.Table:
    return pa.Table.from_batches(list(historian.read(meter_ids, start, end)), schema=WIDE_SCHEMA)


def test_the_worker_schema_is_the_simulators_wide_schema(small_fleet: Fleet) -> None:
    # GIVEN the simulator's readings THEN the worker's schema (it ships without meterflow) is theirs
    window = small_fleet.window(START, END)
    assert small_fleet.records(window, 0, 1).to_arrow().schema == WIDE_SCHEMA


def test_a_window_reads_back_exactly_the_seeded_readings_in_api_order(
    open_historian: HistorianFactory, small_fleet: Fleet
) -> None:
    # GIVEN a seeded historian WHEN the whole window is read THEN it is the fleet's readings, in order
    table = read_all(open_historian(), None, START, END)
    assert table.equals(expected(small_fleet, START, END))
    keys = list(zip(table.column("time").to_pylist(), table.column("device_id").to_pylist(), strict=True))
    assert keys == sorted(keys)
    assert table.num_rows == 12 * 38


def test_the_window_includes_its_start_and_excludes_its_end(
    open_historian: HistorianFactory, small_fleet: Fleet
) -> None:
    # GIVEN a window from one slot's time to another's WHEN read THEN the end slot is not included
    start, end = datetime(2023, 1, 2, 0, 30), datetime(2023, 1, 2, 1, 0)
    times = set(read_all(open_historian(), None, start, end).column("time").to_pylist())
    assert times == {datetime(2023, 1, 2, 0, 30), datetime(2023, 1, 2, 0, 45)}
    # AND a start a microsecond after a slot skips that slot
    later = set(
        read_all(open_historian(), None, start + timedelta(microseconds=1), end).column("time").to_pylist()
    )
    assert later == {datetime(2023, 1, 2, 0, 45)}


def test_a_meter_filter_keeps_only_those_meters(open_historian: HistorianFactory, small_fleet: Fleet) -> None:
    # GIVEN three meters (one of them unknown) WHEN read THEN only the known two appear, all their readings
    meters = [small_fleet.device_id_list[5], small_fleet.device_id_list[17], "not-a-meter"]
    table = read_all(open_historian(), meters, START, END)
    assert set(table.column("device_id").to_pylist()) <= set(meters[:2])
    assert table.equals(expected(small_fleet, START, END, meters))


def test_a_meter_set_beyond_the_bound_parameter_limit_is_filtered_the_same(
    open_historian: HistorianFactory, small_fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN more meters than a statement binds WHEN read THEN the result is the same as when bound
    meters = small_fleet.device_id_list[:10]
    monkeypatch.setattr(historians, "MAX_BOUND_METER_IDS", 3)
    assert read_all(open_historian(), meters, START, END).equals(expected(small_fleet, START, END, meters))


def test_batches_are_bounded_and_never_empty(open_historian: HistorianFactory, small_fleet: Fleet) -> None:
    # GIVEN batches of at most 7 rows WHEN the window is read THEN every batch holds 1 to 7 rows
    batches = list(open_historian(batch_rows=7).read(None, START, END))
    assert all(1 <= batch.num_rows <= 7 for batch in batches)
    assert sum(batch.num_rows for batch in batches) == 12 * 38


def test_a_window_without_readings_yields_nothing(open_historian: HistorianFactory) -> None:
    assert list(open_historian().read(None, END, END + timedelta(hours=1))) == []
    assert list(open_historian().read(["not-a-meter"], START, END)) == []


def test_aware_times_are_taken_in_utc(open_historian: HistorianFactory, small_fleet: Fleet) -> None:
    # GIVEN the window as aware times in UTC+2 WHEN read THEN it is the same naive-UTC window
    plus_two = timezone(timedelta(hours=2))
    start = START.replace(tzinfo=UTC).astimezone(plus_two)
    end = END.replace(tzinfo=UTC).astimezone(plus_two)
    assert read_all(open_historian(), None, start, end).equals(expected(small_fleet, START, END))
    assert naive_utc(start) == START


def test_seeding_a_window_again_replaces_it(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN a seeded SQLite historian WHEN the same window is seeded again THEN it holds one copy
    url = f"sqlite:///{tmp_path}/historian.db"
    assert seed_historian(url, small_fleet, START, END) == 12 * 38
    assert seed_historian(url, small_fleet, START, END) == 12 * 38
    assert read_all(historian_from_url(url), None, START, END).num_rows == 12 * 38


def test_seeding_some_meters_replaces_only_theirs(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN a seeded window WHEN two meters are seeded again THEN the window is still whole and single
    url = f"sqlite:///{tmp_path}/historian.db"
    seed_historian(url, small_fleet, START, END)
    meters = small_fleet.device_id_list[:2]
    assert (
        seed_historian(url, small_fleet, START, END, meters)
        == expected(small_fleet, START, END, meters).num_rows
    )
    assert read_all(historian_from_url(url), None, START, END).equals(expected(small_fleet, START, END))


def test_a_csv_seed_refuses_a_window_overlapping_another(tmp_path: Path, small_fleet: Fleet) -> None:
    url = f"csv://{tmp_path}"
    seed_historian(url, small_fleet, START, END)
    with pytest.raises(ValueError, match="overlaps"):
        seed_historian(url, small_fleet, START + timedelta(hours=1), END + timedelta(hours=1))


# ------------------------------------------------------------------------------- CSV directory
def hes_lines(fleet: Fleet, start: datetime, end: datetime) -> list[bytes]:
    window = fleet.window(start, end)
    return encode_csv(fleet.records(window, 0, window.record_count)).splitlines(keepends=True)


def test_files_are_read_in_time_order_whatever_their_names(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN the window split in two files whose names sort the other way round, one gzipped
    lines = hes_lines(small_fleet, START, END)
    (tmp_path / "b-first-half.csv").write_bytes(b"".join(lines[:200]))
    (tmp_path / "a-second-half.csv.gz").write_bytes(gzip.compress(b"".join(lines[200:])))
    # WHEN read THEN the rows come in (time, device_id) order across both files
    table = read_all(CsvDirectoryHistorian(tmp_path, batch_rows=50), None, START, END)
    assert table.equals(expected(small_fleet, START, END))


def test_a_file_out_of_order_is_refused(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN a file whose rows are not in (time, device_id) order WHEN read THEN the export is refused
    lines = hes_lines(small_fleet, START, END)
    (tmp_path / "readings.csv").write_bytes(b"".join([lines[0], *reversed(lines[1:])]))
    with pytest.raises(HistorianOrderError, match=r"readings\.csv"):
        read_all(CsvDirectoryHistorian(tmp_path), None, START, END)


def test_overlapping_files_are_refused(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN two files holding the same readings WHEN read THEN the second one is refused
    lines = b"".join(hes_lines(small_fleet, START, END))
    (tmp_path / "one.csv").write_bytes(lines)
    (tmp_path / "two.csv").write_bytes(lines)
    with pytest.raises(HistorianOrderError):
        read_all(CsvDirectoryHistorian(tmp_path), None, START, END)


def test_a_file_wholly_before_the_window_is_not_read(tmp_path: Path, small_fleet: Fleet) -> None:
    # GIVEN a file before the window that would fail to read (out of order after its first row)
    early = hes_lines(small_fleet, START, START + timedelta(hours=1))
    (tmp_path / "early.csv").write_bytes(b"".join([early[0], *reversed(early[1:])]))
    (tmp_path / "late.csv").write_bytes(b"".join(hes_lines(small_fleet, START + timedelta(hours=1), END)))
    # WHEN a window inside the later file is read THEN the earlier file is skipped, unread
    start = START + timedelta(hours=2)
    table = read_all(CsvDirectoryHistorian(tmp_path), None, start, END)
    assert table.equals(expected(small_fleet, start, END))


# ------------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    ("url", "kind"),
    [("sqlite:///{dir}/h.db", SqlHistorian), ("csv://{dir}", CsvDirectoryHistorian)],
)
def test_the_url_scheme_picks_the_adapter(tmp_path: Path, url: str, kind: type) -> None:
    assert isinstance(historian_from_url(url.format(dir=tmp_path)), kind)


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "mysql://u@h/db", "pi-web-api://host"])
def test_an_unknown_scheme_names_the_supported_ones(url: str) -> None:
    with pytest.raises(UnsupportedHistorian, match=r"postgresql\+psycopg://"):
        historian_from_url(url)
