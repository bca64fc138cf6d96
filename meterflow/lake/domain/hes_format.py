"""Parsing and validating the HES file (seed 001 table 1, headerless CSV) into long rows.

Every line is accounted for: a line that cannot become six trustworthy readings is quarantined
with its reason and the rest of the range carries on. Validation is vectorised (pyarrow compute);
only the text of bad lines is rebuilt in Python.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from meterflow.lake.domain.parsing import ParsedRange, QuarantinedLine, QuarantineReason
from meterflow.lake.domain.schema import HES_READING_TYPES, STAGED_SCHEMA, WIDE_COLUMNS

_NUMERIC = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
VALUE_COLUMNS: tuple[str, ...] = tuple(kind.name for kind in HES_READING_TYPES)


def _parse_timestamp(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(timestamps[us], validity mask). Calendar errors (2023-02-30) count as invalid."""
    shaped = pc.fill_null(pc.match_substring_regex(column, _TIMESTAMP), False)
    seconds_text = pc.replace_substring(pc.utf8_slice_codeunits(column, 0, 19), "T", " ").combine_chunks()
    whole_seconds = pc.strptime(seconds_text, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    # strptime rolls impossible dates over (Feb 30 -> Mar 2): a valid stamp must format back to itself
    # (arrow's %S prints the microseconds of a timestamp[us] too)
    round_trip = pc.equal(
        pc.strftime(whole_seconds, format="%Y-%m-%d %H:%M:%S"),
        pc.binary_join_element_wise(seconds_text, ".000000", ""),
    )
    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(column, 20, 26), 6, "0")
    fraction_digits = pc.fill_null(pc.match_substring_regex(fraction, r"^\d{6}$"), False)
    micros = pc.cast(pc.if_else(fraction_digits, fraction, "000000"), pa.int64())
    valid = pc.and_(pc.and_(shaped, pc.is_valid(whole_seconds)), pc.fill_null(round_trip, False))
    stamps = pc.cast(pc.add(pc.cast(pc.fill_null(whole_seconds, 0), pa.int64()), micros), pa.timestamp("us"))
    mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    return stamps, mask


_TYPED_COLUMNS = {
    "time": pa.timestamp("us"),
    "arrival_time": pa.timestamp("us"),
    "device_id": pa.string(),
    "measure_name": pa.string(),
    **dict.fromkeys(VALUE_COLUMNS, pa.float64()),
}
_TEXT_COLUMNS = dict.fromkeys(WIDE_COLUMNS, pa.string())


def _read(data: bytes, column_types: dict[str, pa.DataType]) -> tuple[pa.Table, list[tuple[int, str]]]:
    wrong_width: list[tuple[int, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        wrong_width.append((int(row.number) if row.number is not None else -1, row.text))
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(data),
        # single-threaded: the parser then numbers the rows it skips, and a worker has one core anyway
        read_options=pacsv.ReadOptions(column_names=list(WIDE_COLUMNS), use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=False),
    )
    return table, wrong_width


def _registry(known_meters: pa.Array | Collection[str]) -> pa.Array:
    return known_meters if isinstance(known_meters, pa.Array) else pa.array(list(known_meters), pa.string())


def _typed_parse(
    data: bytes, known_meters: pa.Array | Collection[str] | None
) -> tuple[pa.Table, list[tuple[int, str]]] | None:
    """The fast path: the whole range parses as typed columns and every row validates; else None."""
    try:
        table, wrong_width = _read(data, _TYPED_COLUMNS)
    except pa.ArrowInvalid:
        return None
    if any(table[name].null_count for name in WIDE_COLUMNS):
        return None
    pf = table["pf"]
    if pc.any(pc.or_(pc.less(pf, 0.0), pc.greater(pf, 1.0))).as_py():
        return None
    if (
        known_meters is not None
        and not pc.all(pc.is_in(table["device_id"], value_set=_registry(known_meters))).as_py()
    ):
        return None
    return table, wrong_width


def _long_rows(meters: pa.Array, stamps: pa.Array, values: dict[str, pa.Array]) -> pa.Table:
    count = len(meters)
    parts = [
        pa.table(
            [meters, values[kind.name], stamps, pa.repeat(kind.name, count)],
            schema=STAGED_SCHEMA,
        )
        for kind in HES_READING_TYPES
    ]
    return pa.concat_tables(parts)


def parse_hes_range(
    data: bytes,
    known_meters: pa.Array | Collection[str] | None,
) -> ParsedRange:
    """Parse complete lines of a HES file into staged long rows (six per valid line).

    ``known_meters`` is the meter registry; None accepts any meter.
    A clean range takes the typed fast path; a range with any bad value is re-read as text so each
    bad line can be quarantined with its reason and its original text.
    """
    if not data.strip():
        return ParsedRange.empty()
    typed = _typed_parse(data, known_meters)
    if typed is not None:
        table, wrong_width = typed
        quarantined = [
            QuarantinedLine(number, QuarantineReason.COLUMN_COUNT, text) for number, text in wrong_width
        ]
        values = {name: table[name].combine_chunks() for name in VALUE_COLUMNS}
        rows = _long_rows(table["device_id"].combine_chunks(), table["time"].combine_chunks(), values)
        return ParsedRange(rows, table.num_rows + len(wrong_width), table.num_rows, quarantined)
    return _text_parse(data, known_meters)


def _text_parse(data: bytes, known_meters: pa.Array | Collection[str] | None) -> ParsedRange:
    table, wrong_width = _read(data, _TEXT_COLUMNS)
    rows = table.num_rows
    lines_read = rows + len(wrong_width)
    skipped = np.array(sorted(number for number, _ in wrong_width), dtype=np.int64)
    line_numbers = np.delete(np.arange(1, lines_read + 1, dtype=np.int64), skipped - 1)

    reasons = np.full(rows, "", dtype=object)

    def flag(mask: np.ndarray, reason: QuarantineReason) -> None:
        reasons[(reasons == "") & mask] = reason.value

    # A blank line reads as a row of empty cells: it has no columns at all.
    blank = np.ones(rows, dtype=bool)
    for name in WIDE_COLUMNS:
        blank &= np.asarray(pc.equal(table[name], "").to_numpy(zero_copy_only=False), dtype=bool)
    flag(blank, QuarantineReason.COLUMN_COUNT)
    times, time_ok = _parse_timestamp(table["time"])
    _, arrival_ok = _parse_timestamp(table["arrival_time"])
    flag(~(time_ok & arrival_ok), QuarantineReason.BAD_TIMESTAMP)
    if known_meters is not None:
        known = pc.is_in(table["device_id"], value_set=_registry(known_meters)).to_numpy(zero_copy_only=False)
        flag(~np.asarray(known, dtype=bool), QuarantineReason.UNKNOWN_METER)
    values: dict[str, np.ndarray] = {}
    for name in VALUE_COLUMNS:
        column = table[name]
        numeric = np.asarray(
            pc.fill_null(pc.match_substring_regex(column, _NUMERIC), False).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        flag(~numeric, QuarantineReason.NOT_NUMERIC)
        values[name] = np.asarray(
            pc.cast(pc.if_else(pa.array(numeric), column, "0"), pa.float64()).to_numpy(zero_copy_only=False)
        )
    pf = values["pf"]
    flag((pf < 0) | (pf > 1), QuarantineReason.PF_OUT_OF_RANGE)

    good = reasons == ""
    quarantined = [
        QuarantinedLine(number, QuarantineReason.COLUMN_COUNT, text) for number, text in wrong_width
    ]
    bad_rows = np.flatnonzero(~good)
    if len(bad_rows):
        bad_table = table.take(pa.array(bad_rows))
        texts = [
            ",".join(cells) for cells in zip(*(bad_table[c].to_pylist() for c in WIDE_COLUMNS), strict=True)
        ]
        quarantined += [
            QuarantinedLine(
                int(line_numbers[row]), QuarantineReason(reasons[row]), "" if blank[row] else text
            )
            for row, text in zip(bad_rows, texts, strict=True)
        ]
    quarantined.sort(key=lambda line: line.line_number)

    keep = pa.array(good)
    meters = pc.filter(table["device_id"], keep).combine_chunks()
    rows_out = _long_rows(
        meters,
        pc.filter(times, keep),
        {name: pa.array(values[name][good]) for name in VALUE_COLUMNS},
    )
    return ParsedRange(rows_out, lines_read, len(meters), quarantined)
