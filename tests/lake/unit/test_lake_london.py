"""The London (LCL) transformer: header handling, quarantine reasons, line numbers, households, ranges."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime

import pyarrow as pa
import pytest

from meterflow.core.errors import InvalidInput
from meterflow.lake.domain.catalog import LCL_HOUSEHOLDS
from meterflow.lake.domain.london import (
    ACORN_GROUPS,
    LCL_HEADER,
    london_households,
    parse_london_lcl,
    parse_london_lcl_with_households,
    synthetic_london_file,
)
from meterflow.lake.domain.parsing import ParsedRange, QuarantinedLine, QuarantineReason
from meterflow.lake.domain.schema import KWH, STAGED_SCHEMA

HEADER_WITHOUT_SPACE = "LCLid,stdorToU,DateTime,KWH/hh (per half hour),Acorn,Acorn_grouped"
GOOD_TIME = "2012-10-12 00:30:00.0000000"
SYNTHETIC_START = date(2013, 1, 1)


def line(
    meter: str = "MAC000002",
    tariff: str = "Std",
    time: str = GOOD_TIME,
    kwh: str = "0.24",
    acorn: str = "ACORN-A",
    group: str = "Affluent",
) -> str:
    return ",".join((meter, tariff, time, kwh, acorn, group))


def lcl(*lines: str, header: str | None = LCL_HEADER, newline: str = "\n") -> bytes:
    """A file (or range) of the given lines, each terminated, the header first when given."""
    rows = [header, *lines] if header is not None else list(lines)
    return "".join(row + newline for row in rows).encode()


def assert_accounted(parsed: ParsedRange) -> None:
    """The transformer's invariant: every line read is either staged or quarantined."""
    assert parsed.lines_read == parsed.lines_valid + len(parsed.quarantined)
    assert parsed.rows.num_rows == parsed.lines_valid
    assert parsed.rows.schema.equals(STAGED_SCHEMA)
    numbers = [entry.line_number for entry in parsed.quarantined]
    assert numbers == sorted(numbers)


@pytest.fixture(scope="module")
def synthetic() -> bytes:
    """Ten households over three days: 1,440 readings, a couple of them Null."""
    return synthetic_london_file(households=10, days=3, start=SYNTHETIC_START, seed=42)


@pytest.fixture(scope="module")
def large_synthetic() -> bytes:
    """About 2.9 MB: several blocks of the CSV reader, so line numbering crosses block boundaries."""
    return synthetic_london_file(households=30, days=30, start=SYNTHETIC_START, seed=7)


# --------------------------------------------------------------------------------------------- valid lines
@pytest.mark.parametrize("header", [LCL_HEADER, HEADER_WITHOUT_SPACE], ids=["trailing-space", "no-space"])
def test_a_header_with_or_without_the_trailing_space_is_skipped_and_not_counted(header: str) -> None:
    # GIVEN a file with a header and two readings
    data = lcl(line(), line(time="2012-10-12 01:00:00.0000000", kwh="0.5"), header=header)
    # WHEN it is parsed from its first line
    parsed = parse_london_lcl(data, 1)
    # THEN the header is not a reading and not counted
    assert (parsed.lines_read, parsed.lines_valid, parsed.quarantined) == (2, 2, [])
    assert_accounted(parsed)


def test_a_valid_line_becomes_one_staged_kwh_row() -> None:
    # GIVEN one valid LCL line WHEN parsed THEN it is one kwh row (unit and source come with the partition)
    parsed = parse_london_lcl(lcl(line(meter="MAC004321", kwh="0.263")), 1)
    assert parsed.rows.to_pylist() == [
        {
            "meter_id": "MAC004321",
            "reading_value": 0.263,
            "reading_date_time": datetime(2012, 10, 12, 0, 30),
            "reading_type": KWH.name,
        }
    ]


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2012-10-12 00:30:00.0000000", datetime(2012, 10, 12, 0, 30)),
        ("2012-10-12 00:30:00", datetime(2012, 10, 12, 0, 30)),
        ("2012-10-12T23:30:00", datetime(2012, 10, 12, 23, 30)),
        ("2012-10-12 00:30:00.5", datetime(2012, 10, 12, 0, 30, 0, 500_000)),
        ("2012-10-12 00:30:00.123456789", datetime(2012, 10, 12, 0, 30, 0, 123_456)),
        ("2012-02-29 00:00:00.0000000", datetime(2012, 2, 29)),  # a leap day
        ("2000-02-29 12:00:00.0000000", datetime(2000, 2, 29, 12)),  # divisible by 400: leap
        ("2013-12-31 23:59:59.0000000", datetime(2013, 12, 31, 23, 59, 59)),
        ("  2012-10-12 00:30:00.0000000 ", datetime(2012, 10, 12, 0, 30)),
    ],
)
def test_accepted_timestamp_forms(time: str, expected: datetime) -> None:
    parsed = parse_london_lcl(lcl(line(time=time)), 1)
    assert parsed.quarantined == []
    assert parsed.rows.column("reading_date_time").to_pylist() == [expected]


@pytest.mark.parametrize(
    ("kwh", "expected"),
    [("0.24", 0.24), (" 0 ", 0.0), ("0", 0.0), ("1.5e-1", 0.15), ("+2", 2.0), (".5", 0.5), ("-0", 0.0)],
)
def test_accepted_kwh_forms(kwh: str, expected: float) -> None:
    parsed = parse_london_lcl(lcl(line(kwh=kwh)), 1)
    assert parsed.quarantined == []
    assert parsed.rows.column("reading_value").to_pylist() == [expected]


def test_crlf_line_endings_and_a_byte_order_mark_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + lcl(line(), line(kwh="Null"), line(kwh="0.3"), newline="\r\n")
    parsed = parse_london_lcl(data, 1)
    assert (parsed.lines_read, parsed.lines_valid) == (3, 2)
    assert parsed.quarantined == [QuarantinedLine(3, QuarantineReason.MISSING_VALUE, line(kwh="Null"))]
    assert parsed.rows.column("reading_value").to_pylist() == [0.24, 0.3]


def test_surrounding_blanks_in_the_meter_id_are_trimmed() -> None:
    parsed = parse_london_lcl(lcl(line(meter=" MAC000002 ")), 1)
    assert parsed.rows.column("meter_id").to_pylist() == ["MAC000002"]


# --------------------------------------------------------------------------------------------- quarantine
BAD_LINES: list[tuple[str, str, QuarantineReason]] = [
    ("too-few-columns", "MAC000002,Std,2012-10-12 00:30:00.0000000,0.24", QuarantineReason.COLUMN_COUNT),
    ("too-many-columns", line() + ",extra", QuarantineReason.COLUMN_COUNT),
    ("blank-line", "", QuarantineReason.COLUMN_COUNT),
    ("one-column", "garbage", QuarantineReason.COLUMN_COUNT),
    ("short-id", line(meter="MAC00002"), QuarantineReason.BAD_METER_ID),
    ("lower-case-id", line(meter="mac000002"), QuarantineReason.BAD_METER_ID),
    ("foreign-id", line(meter="XYZ000002"), QuarantineReason.BAD_METER_ID),
    ("empty-id", line(meter=""), QuarantineReason.BAD_METER_ID),
    ("all-fields-empty", ",,,,,", QuarantineReason.BAD_METER_ID),
    ("no-timestamp", line(time=""), QuarantineReason.BAD_TIMESTAMP),
    ("text-timestamp", line(time="yesterday"), QuarantineReason.BAD_TIMESTAMP),
    ("uk-date", line(time="12/10/2012 00:30"), QuarantineReason.BAD_TIMESTAMP),
    ("30-february", line(time="2013-02-30 00:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("29-february-not-leap", line(time="2013-02-29 00:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("1900-not-leap", line(time="1900-02-29 00:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("31-april", line(time="2013-04-31 00:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("month-13", line(time="2013-13-01 00:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("hour-24", line(time="2012-10-12 24:00:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("minute-60", line(time="2012-10-12 00:60:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("second-60", line(time="2012-10-12 00:30:60.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("one-digit-month", line(time="2012-1-12 00:30:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("empty-fraction", line(time="2012-10-12 00:30:00."), QuarantineReason.BAD_TIMESTAMP),
    ("ten-digit-fraction", line(time="2012-10-12 00:30:00.0000000000"), QuarantineReason.BAD_TIMESTAMP),
    ("before-the-lake", line(time="1999-12-31 23:30:00.0000000"), QuarantineReason.BAD_TIMESTAMP),
    ("timezone-suffix", line(time="2012-10-12 00:30:00Z"), QuarantineReason.BAD_TIMESTAMP),
    ("null", line(kwh="Null"), QuarantineReason.MISSING_VALUE),
    ("null-padded", line(kwh=" Null "), QuarantineReason.MISSING_VALUE),
    ("null-upper", line(kwh="NULL"), QuarantineReason.MISSING_VALUE),
    ("empty-kwh", line(kwh=""), QuarantineReason.MISSING_VALUE),
    ("blank-kwh", line(kwh="   "), QuarantineReason.MISSING_VALUE),
    ("text-kwh", line(kwh="abc"), QuarantineReason.NOT_NUMERIC),
    ("nan-kwh", line(kwh="NaN"), QuarantineReason.NOT_NUMERIC),
    ("inf-kwh", line(kwh="inf"), QuarantineReason.NOT_NUMERIC),
    ("overflowing-kwh", line(kwh="1e400"), QuarantineReason.NOT_NUMERIC),
    ("decimal-comma", line(kwh="0;24"), QuarantineReason.NOT_NUMERIC),
    ("unit-suffix", line(kwh="0.24kWh"), QuarantineReason.NOT_NUMERIC),
    ("negative-kwh", line(kwh="-0.1"), QuarantineReason.NEGATIVE_VALUE),
]


@pytest.mark.parametrize(
    ("bad", "reason"), [(bad, reason) for _, bad, reason in BAD_LINES], ids=[i for i, *_ in BAD_LINES]
)
def test_each_fault_quarantines_its_line_and_the_rest_still_parses(
    bad: str, reason: QuarantineReason
) -> None:
    # GIVEN a bad line between two good ones (lines 2, 3 and 4 of the file)
    data = lcl(line(kwh="0.1"), bad, line(kwh="0.2"))
    # WHEN the file is parsed
    parsed = parse_london_lcl(data, 1)
    # THEN the bad line is quarantined with its number, reason and text, and both good lines staged
    assert parsed.quarantined == [QuarantinedLine(3, reason, bad)]
    assert parsed.rows.column("reading_value").to_pylist() == [0.1, 0.2]
    assert (parsed.lines_read, parsed.lines_valid) == (3, 2)
    assert_accounted(parsed)


def test_invalid_utf8_and_a_bare_carriage_return_are_quarantined_as_bad_encoding() -> None:
    # GIVEN a line with a byte that is not UTF-8 and a line broken by a lone CR
    data = (
        lcl(line(kwh="0.1"))
        + line(group="Affl\xff").encode("latin-1")
        + b"\n"
        + line(kwh="0.2\r0.3").encode()
        + b"\n"
    ) + lcl(line(kwh="0.4"), header=None)
    # WHEN the file is parsed
    parsed = parse_london_lcl(data, 1)
    # THEN both are quarantined under their own numbers and the others parse, numbered right
    assert [(entry.line_number, entry.reason) for entry in parsed.quarantined] == [
        (3, QuarantineReason.BAD_ENCODING),
        (4, QuarantineReason.BAD_ENCODING),
    ]
    assert parsed.quarantined[0].line.endswith("Affl\\xff")
    assert parsed.rows.column("reading_value").to_pylist() == [0.1, 0.4]
    assert_accounted(parsed)


def test_a_line_longer_than_a_reader_block_is_quarantined_not_fatal() -> None:
    # GIVEN a corrupt 3 MB line (the CSV reader's blocks are 1 MiB)
    huge = "MAC000002," + "x" * 3_000_000
    # WHEN the range is parsed
    parsed = parse_london_lcl(lcl(line(), huge, line()), 1)
    # THEN that line alone is quarantined
    assert [(entry.line_number, entry.reason) for entry in parsed.quarantined] == [
        (3, QuarantineReason.COLUMN_COUNT)
    ]
    assert parsed.quarantined[0].line == huge
    assert parsed.lines_valid == 2


def test_valid_utf8_beyond_ascii_is_not_a_fault() -> None:
    parsed = parse_london_lcl(lcl(line(group="Affluent–é")), 1)
    assert parsed.quarantined == []


def test_the_first_fault_in_precedence_order_names_the_reason() -> None:
    # GIVEN lines with several faults each
    data = lcl(
        line(meter="BAD", time="never", kwh="Null"),
        line(time="never", kwh="Null"),
        line(kwh="-x"),
    )
    parsed = parse_london_lcl(data, 1)
    # THEN meter id beats timestamp beats value
    assert [entry.reason for entry in parsed.quarantined] == [
        QuarantineReason.BAD_METER_ID,
        QuarantineReason.BAD_TIMESTAMP,
        QuarantineReason.NOT_NUMERIC,
    ]


def test_line_numbers_count_every_line_of_the_file_including_blank_and_short_ones() -> None:
    # GIVEN a file whose faults are spread between good lines (numbers in the comments)
    data = lcl(
        line(),  # 2
        "",  # 3
        "short,line",  # 4
        line(kwh="Null"),  # 5
        "",  # 6
        "",  # 7
        line(),  # 8
        line(meter="M1"),  # 9
        "a,b,c,d,e,f,g",  # 10
        line(),  # 11
    )
    parsed = parse_london_lcl(data, 1)
    assert [(entry.line_number, entry.reason) for entry in parsed.quarantined] == [
        (3, QuarantineReason.COLUMN_COUNT),
        (4, QuarantineReason.COLUMN_COUNT),
        (5, QuarantineReason.MISSING_VALUE),
        (6, QuarantineReason.COLUMN_COUNT),
        (7, QuarantineReason.COLUMN_COUNT),
        (9, QuarantineReason.BAD_METER_ID),
        (10, QuarantineReason.COLUMN_COUNT),
    ]
    assert (parsed.lines_read, parsed.lines_valid) == (10, 3)
    assert_accounted(parsed)


def test_a_range_from_mid_file_has_no_header_and_numbers_from_its_first_line() -> None:
    # GIVEN a range that starts at line 1,001 of the file (no header)
    data = lcl(line(), line(kwh="Null"), line(), "x", header=None)
    # WHEN it is parsed with its first line number
    parsed = parse_london_lcl(data, 1_001)
    # THEN every line is a candidate reading and quarantined lines carry file line numbers
    assert parsed.lines_read == 4
    assert [(entry.line_number, entry.reason) for entry in parsed.quarantined] == [
        (1_002, QuarantineReason.MISSING_VALUE),
        (1_004, QuarantineReason.COLUMN_COUNT),
    ]
    assert_accounted(parsed)


def test_an_empty_range_and_a_header_only_range_read_no_lines() -> None:
    for data in (b"", lcl(), LCL_HEADER.encode()):
        parsed = parse_london_lcl(data, 1)
        assert (parsed.lines_read, parsed.lines_valid, parsed.quarantined) == (0, 0, [])
        assert parsed.rows.schema.equals(STAGED_SCHEMA)


def test_a_range_whose_last_line_lacks_its_newline_still_reads_it() -> None:
    parsed = parse_london_lcl(lcl(line()) + line(kwh="0.7").encode(), 1)
    assert parsed.rows.column("reading_value").to_pylist() == [0.24, 0.7]


def test_a_foreign_header_is_rejected() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_london_lcl(lcl(line(), header="LCLid,DateTime,KWH"), 1)
    assert raised.value.field == "header"


def test_first_line_number_must_be_positive() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_london_lcl(lcl(line()), 0)
    assert raised.value.field == "first_line_number"


# --------------------------------------------------------------------------------------------- households
def test_households_have_one_row_per_valid_meter_with_the_catalog_columns() -> None:
    # GIVEN lines of three meters, one of which has only invalid lines
    data = lcl(
        line(meter="MAC000010", tariff="ToU", acorn="ACORN-K", group="Adversity"),
        line(meter="MAC000003", tariff=" Std ", acorn="ACORN-F", group="Comfortable"),
        line(meter="MAC000010", tariff="ToU", acorn="ACORN-K", group="Adversity", kwh="0.9"),
        line(meter="MAC000099", kwh="Null"),
    )
    # WHEN the households are extracted
    households = london_households(data)
    # THEN they are sorted by meter id, trimmed, with exactly the catalog's columns
    assert households.column_names == [column.name for column in LCL_HOUSEHOLDS.columns]
    assert all(field.type == pa.string() for field in households.schema)
    assert households.to_pylist() == [
        {"meter_id": "MAC000003", "std_or_tou": "Std", "acorn": "ACORN-F", "acorn_grouped": "Comfortable"},
        {"meter_id": "MAC000010", "std_or_tou": "ToU", "acorn": "ACORN-K", "acorn_grouped": "Adversity"},
    ]


def test_parsing_with_households_equals_the_two_separate_calls(synthetic: bytes) -> None:
    parsed, households = parse_london_lcl_with_households(synthetic, 1)
    alone = parse_london_lcl(synthetic, 1)
    assert parsed.rows.equals(alone.rows)
    assert parsed.quarantined == alone.quarantined
    assert households.equals(london_households(synthetic))


def test_households_of_an_empty_range_is_an_empty_table() -> None:
    households = london_households(lcl())
    assert households.num_rows == 0
    assert households.column_names == [column.name for column in LCL_HOUSEHOLDS.columns]


# --------------------------------------------------------------------------------------------- synthetic
def test_the_synthetic_file_is_deterministic(synthetic: bytes) -> None:
    assert synthetic_london_file(households=10, days=3, start=SYNTHETIC_START, seed=42) == synthetic
    assert synthetic_london_file(households=10, days=3, start=SYNTHETIC_START, seed=43) != synthetic


def test_the_synthetic_file_looks_like_the_published_one(synthetic: bytes) -> None:
    # GIVEN the synthetic file's text
    lines = synthetic.decode().splitlines()
    # THEN it has the real header, then households x days x 48 lines ordered by LCLid then time
    assert lines[0] == LCL_HEADER
    rows = [row.split(",") for row in lines[1:]]
    assert len(rows) == 10 * 3 * 48
    assert rows == sorted(rows, key=lambda row: (row[0], row[2]))
    assert rows[0][:3] == ["MAC000002", rows[0][1], "2013-01-01 00:00:00.0000000"]
    assert all(re.fullmatch(r"MAC\d{6}", row[0]) for row in rows)
    assert {row[1] for row in rows} <= {"Std", "ToU"}
    assert all(ACORN_GROUPS[row[4]] == row[5] for row in rows)
    # AND every household has 144 half-hours, each meter keeping one tariff and one Acorn
    per_meter = Counter(row[0] for row in rows)
    assert set(per_meter.values()) == {144}
    assert all(len({(row[1], row[4]) for row in rows if row[0] == meter}) == 1 for meter in per_meter)


def test_the_synthetic_file_parses_with_only_its_nulls_quarantined(large_synthetic: bytes) -> None:
    # WHEN a realistic month of 30 households is parsed
    parsed, households = parse_london_lcl_with_households(large_synthetic, 1)
    # THEN only the Null readings (a small, non-zero share) are quarantined
    assert parsed.lines_read == 30 * 30 * 48
    reasons = Counter(entry.reason for entry in parsed.quarantined)
    assert set(reasons) == {QuarantineReason.MISSING_VALUE}
    assert 0 < reasons[QuarantineReason.MISSING_VALUE] < parsed.lines_read * 0.005
    assert all(entry.line.split(",")[3] == "Null" for entry in parsed.quarantined)
    assert_accounted(parsed)
    # AND the values look like a home's half-hourly energy, with a real mix of households
    values = parsed.rows.column("reading_value").to_numpy()
    assert values.min() >= 0 and 0.05 < values.mean() < 0.6 and values.max() < 5
    assert households.num_rows == 30
    assert set(households.column("std_or_tou").to_pylist()) == {"Std", "ToU"}
    assert len(set(households.column("acorn_grouped").to_pylist())) == 3


def test_the_synthetic_file_rejects_impossible_sizes() -> None:
    for households, days, field in ((0, 1, "households"), (1, 0, "days")):
        with pytest.raises(InvalidInput) as raised:
            synthetic_london_file(households=households, days=days, start=SYNTHETIC_START, seed=1)
        assert raised.value.field == field


# --------------------------------------------------------------------------------------------- ranges
def corrupt(data: bytes, replacements: dict[int, str]) -> bytes:
    """Replace whole lines (1-based file line numbers) of a file."""
    lines = data.split(b"\n")
    for number, text in replacements.items():
        lines[number - 1] = text.encode()
    return b"\n".join(lines)


def split_at_lines(data: bytes, cuts: list[int]) -> list[tuple[bytes, int]]:
    """Cut a file into ranges that each start at one of the given line numbers (1-based)."""
    starts = [0]
    for number, offset in enumerate(_line_starts(data), start=1):
        if number in cuts:
            starts.append(offset)
    bounds = [*starts, len(data)]
    first_lines = [1, *cuts]
    return [(data[bounds[i] : bounds[i + 1]], first_lines[i]) for i in range(len(first_lines))]


def _line_starts(data: bytes) -> list[int]:
    offsets = [0]
    position = data.find(b"\n")
    while position != -1:
        offsets.append(position + 1)
        position = data.find(b"\n", position + 1)
    return offsets


INJECTED = {
    5: "",
    777: "MAC000002,Std,2013-01-01",
    15_000: line(meter="MACHINE"),
    15_001: line(time="2013-02-30 00:00:00.0000000"),
    15_002: line(kwh="-1"),
    30_000: line(kwh="twelve"),
    43_201: line() + ",",  # the file's last line
}


@pytest.fixture(scope="module")
def corrupted(large_synthetic: bytes) -> bytes:
    return corrupt(large_synthetic, INJECTED)


def test_injected_faults_keep_their_line_numbers_across_reader_blocks(corrupted: bytes) -> None:
    # GIVEN a ~3 MB file (several CSV reader blocks) with faults injected at known lines
    parsed = parse_london_lcl(corrupted, 1)
    # THEN each is quarantined at exactly its line, with its text; all others are Nulls
    found = {entry.line_number: entry for entry in parsed.quarantined}
    for number, text in INJECTED.items():
        assert found[number].line == text
    expected_reasons = [
        QuarantineReason.COLUMN_COUNT,
        QuarantineReason.COLUMN_COUNT,
        QuarantineReason.BAD_METER_ID,
        QuarantineReason.BAD_TIMESTAMP,
        QuarantineReason.NEGATIVE_VALUE,
        QuarantineReason.NOT_NUMERIC,
        QuarantineReason.COLUMN_COUNT,
    ]
    assert [found[number].reason for number in sorted(INJECTED)] == expected_reasons
    others = [entry for number, entry in found.items() if number not in INJECTED]
    assert all(entry.reason is QuarantineReason.MISSING_VALUE for entry in others)
    assert parsed.lines_read == 43_200
    assert_accounted(parsed)


@pytest.mark.parametrize("cuts", [[2], [2, 778], [500, 15_001, 15_002, 29_999], [43_201]])
def test_ranges_parsed_separately_add_up_to_the_whole_file(corrupted: bytes, cuts: list[int]) -> None:
    # GIVEN the file parsed whole, and cut into ranges parsed on their own (only the first has the header)
    whole = parse_london_lcl(corrupted, 1)
    parts = [parse_london_lcl(data, first) for data, first in split_at_lines(corrupted, cuts)]
    # THEN rows, quarantined lines and counts are identical
    assert pa.concat_tables(part.rows for part in parts).equals(whole.rows)
    assert [entry for part in parts for entry in part.quarantined] == whole.quarantined
    assert sum(part.lines_read for part in parts) == whole.lines_read
    assert sum(part.lines_valid for part in parts) == whole.lines_valid
