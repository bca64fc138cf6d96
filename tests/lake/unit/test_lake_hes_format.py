"""Parsing HES ranges into long rows and quarantining every line that cannot be trusted."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime

import pyarrow as pa
import pytest

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.lake.domain.hes_format import VALUE_COLUMNS, parse_hes_range
from meterflow.lake.domain.parsing import QuarantineReason
from meterflow.lake.domain.schema import HES_READING_TYPES, STAGED_SCHEMA


@pytest.fixture(scope="module")
def small_fleet() -> Fleet:
    return Fleet(FleetConfig(meter_count=300))


@pytest.fixture(scope="module")
def clean_csv(small_fleet: Fleet) -> bytes:
    """Twenty clean HES lines (15-minute slots of 2023-01-02)."""
    window = small_fleet.window(datetime(2023, 1, 2), datetime(2023, 1, 2, 1))
    return encode_csv(small_fleet.records(window, 0, 20))


@pytest.fixture(scope="module")
def registry(small_fleet: Fleet) -> pa.Array:
    return small_fleet.device_ids


def csv_lines(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def test_clean_range_yields_six_rows_per_line(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN twenty clean lines from known meters
    # WHEN parsed
    parsed = parse_hes_range(clean_csv, registry)
    # THEN every line is valid and yields one row per reading type
    assert parsed.lines_read == parsed.lines_valid == 20
    assert parsed.quarantined == []
    assert parsed.rows.num_rows == 6 * 20
    assert parsed.rows.schema.equals(STAGED_SCHEMA)


def test_clean_range_rows_carry_type_meter_time_and_csv_values(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN the clean lines and their CSV cells
    lines = csv_lines(clean_csv)
    # WHEN parsed
    rows = parse_hes_range(clean_csv, registry).rows.to_pylist()
    # THEN each reading type's block holds the meter, the reading time and the values of its CSV column
    for block, kind in enumerate(HES_READING_TYPES):
        column = 4 + VALUE_COLUMNS.index(kind.name)
        block_rows = rows[block * 20 : (block + 1) * 20]
        for row, line in zip(block_rows, lines, strict=True):
            assert row["reading_type"] == kind.name
            assert row["meter_id"] == line[2]
            assert row["reading_date_time"] == datetime.fromisoformat(line[0])
            assert row["reading_value"] == float(line[column])


def test_registry_none_accepts_any_meter(clean_csv: bytes) -> None:
    # GIVEN no registry WHEN parsed THEN every line is accepted
    parsed = parse_hes_range(clean_csv, None)
    assert parsed.lines_valid == 20


def test_empty_range_parses_to_nothing(registry: pa.Array) -> None:
    # GIVEN only whitespace WHEN parsed THEN no lines and no rows
    parsed = parse_hes_range(b"\n", registry)
    assert (parsed.lines_read, parsed.lines_valid, parsed.rows.num_rows) == (0, 0, 0)


def replace_field(line: str, index: int, value: str) -> str:
    cells = line.split(",")
    cells[index] = value
    return ",".join(cells)


BAD_LINE_CASES: dict[str, tuple[Callable[[str], str], QuarantineReason]] = {
    "too_few_columns": (lambda line: ",".join(line.split(",")[:7]), QuarantineReason.COLUMN_COUNT),
    "too_many_columns": (lambda line: line + ",extra", QuarantineReason.COLUMN_COUNT),
    "blank_line": (lambda line: "", QuarantineReason.COLUMN_COUNT),
    "garbage_timestamp": (lambda line: replace_field(line, 0, "yesterday"), QuarantineReason.BAD_TIMESTAMP),
    "february_30": (
        lambda line: replace_field(line, 0, "2023-02-30 00:00:00.000000"),
        QuarantineReason.BAD_TIMESTAMP,
    ),
    "month_13": (
        lambda line: replace_field(line, 0, "2023-13-02 00:00:00.000000"),
        QuarantineReason.BAD_TIMESTAMP,
    ),
    "bad_arrival_time": (
        lambda line: replace_field(line, 1, "2023-02-30 00:00:00.000000"),
        QuarantineReason.BAD_TIMESTAMP,
    ),
    "unknown_meter": (
        lambda line: replace_field(line, 2, "00000000-0000-0000-0000-000000000000"),
        QuarantineReason.UNKNOWN_METER,
    ),
    "non_numeric": (lambda line: replace_field(line, 8, "abc"), QuarantineReason.NOT_NUMERIC),
    "empty_value": (lambda line: replace_field(line, 5, ""), QuarantineReason.NOT_NUMERIC),
    "pf_above_one": (lambda line: replace_field(line, 6, "1.2"), QuarantineReason.PF_OUT_OF_RANGE),
    "pf_negative": (lambda line: replace_field(line, 6, "-0.1"), QuarantineReason.PF_OUT_OF_RANGE),
}


@pytest.mark.parametrize("case", sorted(BAD_LINE_CASES))
@pytest.mark.parametrize("bad_index", [0, 7, 19])
def test_each_bad_line_is_quarantined_with_reason_number_and_text(
    clean_csv: bytes, registry: pa.Array, case: str, bad_index: int
) -> None:
    # GIVEN twenty lines of which one (first, middle or last) is broken in one way
    corrupt, reason = BAD_LINE_CASES[case]
    lines = clean_csv.decode().splitlines()
    bad_text = corrupt(lines[bad_index])
    lines[bad_index] = bad_text
    data = ("\n".join(lines) + "\n").encode()
    # WHEN parsed
    parsed = parse_hes_range(data, registry)
    # THEN exactly that line is quarantined, with its 1-based number, reason and original text
    assert len(parsed.quarantined) == 1
    bad = parsed.quarantined[0]
    assert (bad.line_number, bad.reason, bad.line) == (bad_index + 1, reason, bad_text)
    # AND the other lines still parse, and every line is accounted for
    assert parsed.lines_read == 20
    assert parsed.lines_valid == 19
    assert parsed.lines_read == parsed.lines_valid + len(parsed.quarantined)
    assert parsed.rows.num_rows == 6 * 19
    good_lines = [line for index, line in enumerate(lines) if index != bad_index]
    assert parsed.rows.column("meter_id").to_pylist()[:19] == [line.split(",")[2] for line in good_lines]
    # AND reading times stay aligned with the valid lines
    assert parsed.rows.column("reading_date_time").to_pylist()[:19] == [
        datetime.fromisoformat(line.split(",")[0]) for line in good_lines
    ]


def test_mixed_bad_lines_are_each_reported(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN one line of every kind of damage among clean lines
    lines = clean_csv.decode().splitlines()
    damaged = {
        2: (",".join(lines[2].split(",")[:3]), QuarantineReason.COLUMN_COUNT),
        4: ("", QuarantineReason.COLUMN_COUNT),
        6: (replace_field(lines[6], 0, "2023-02-30 00:00:00.000000"), QuarantineReason.BAD_TIMESTAMP),
        9: (replace_field(lines[9], 2, "not-a-meter"), QuarantineReason.UNKNOWN_METER),
        12: (replace_field(lines[12], 9, "n/a"), QuarantineReason.NOT_NUMERIC),
        15: (replace_field(lines[15], 6, "1.5"), QuarantineReason.PF_OUT_OF_RANGE),
    }
    for index, (text, _) in damaged.items():
        lines[index] = text
    data = ("\n".join(lines) + "\n").encode()
    # WHEN parsed
    parsed = parse_hes_range(data, registry)
    # THEN each bad line is reported in line order with its reason and text
    assert [(q.line_number, q.reason, q.line) for q in parsed.quarantined] == [
        (index + 1, reason, text) for index, (text, reason) in sorted(damaged.items())
    ]
    assert parsed.lines_read == 20
    assert parsed.lines_valid == 20 - len(damaged)
    assert parsed.rows.num_rows == 6 * parsed.lines_valid


def test_first_failing_check_names_the_reason(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN a line with both a bad timestamp and an unknown meter
    lines = clean_csv.decode().splitlines()
    lines[0] = replace_field(replace_field(lines[0], 0, "bad"), 2, "nobody")
    data = ("\n".join(lines) + "\n").encode()
    # WHEN parsed THEN it is quarantined once, for the timestamp
    parsed = parse_hes_range(data, registry)
    assert [(q.line_number, q.reason) for q in parsed.quarantined] == [(1, QuarantineReason.BAD_TIMESTAMP)]


def test_range_without_trailing_newline_parses_its_last_line(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN clean lines whose last has no newline WHEN parsed THEN it counts like the others
    parsed = parse_hes_range(clean_csv.rstrip(b"\n"), registry)
    assert (parsed.lines_read, parsed.lines_valid) == (20, 20)


def test_fractional_seconds_are_kept(clean_csv: bytes, registry: pa.Array) -> None:
    # GIVEN a line whose timestamp has microseconds, in a range that also has a bad line (text path)
    lines = clean_csv.decode().splitlines()
    lines[0] = replace_field(lines[0], 0, "2023-01-02 00:00:00.123456")
    lines[1] = replace_field(lines[1], 6, "2")
    data = ("\n".join(lines) + "\n").encode()
    # WHEN parsed
    parsed = parse_hes_range(data, registry)
    # THEN the microseconds survive
    assert parsed.rows.column("reading_date_time")[0].as_py() == datetime(2023, 1, 2, 0, 0, 0, 123456)
