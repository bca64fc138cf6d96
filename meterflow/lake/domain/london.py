"""The London "Smart meters in London" (Low Carbon London, LCL) landing-zone transformer.

UK Power Networks' LCL trial published half-hourly energy of 5,567 London households (2011-2014) as
one CSV: ``LCLid,stdorToU,DateTime,KWH/hh (per half hour) ,Acorn,Acorn_grouped`` (the fourth header
really ends in a space), rows like ``MAC000002,Std,2012-10-12 00:30:00.0000000,0.24,ACORN-A,Affluent``
and ``Null`` where a reading is missing. Each valid line becomes one staged ``kwh`` row; every other
line is quarantined with its reason and line number, never dropped, and never stops the rest.

The file is large (about 167 million lines), so a range is parsed column-wise: pyarrow's CSV reader
with every column as a string, then vectorised checks. Timestamps are parsed by a strict fixed-width
numpy parser rather than ``strptime``, which silently rolls 2013-02-30 over to 2 March.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from meterflow.core.errors import InvalidInput
from meterflow.core.hashing import bit_fields, hash64, uniform
from meterflow.lake.domain.catalog import LCL_HOUSEHOLDS, READINGS
from meterflow.lake.domain.parsing import ParsedRange, QuarantinedLine, QuarantineReason
from meterflow.lake.domain.schema import KWH, PARTITION_OBJECT_NAME, STAGED_SCHEMA
from meterflow.lake.domain.topology import arrow_schema

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

LCL_COLUMNS: Final[tuple[str, ...]] = (
    "LCLid",
    "stdorToU",
    "DateTime",
    "KWH/hh (per half hour)",
    "Acorn",
    "Acorn_grouped",
)
# The header exactly as the published file spells it (trailing space in the fourth column).
LCL_HEADER: Final = "LCLid,stdorToU,DateTime,KWH/hh (per half hour) ,Acorn,Acorn_grouped"
LCL_HOUSEHOLDS_SCHEMA: Final = arrow_schema(LCL_HOUSEHOLDS)
LCL_HOUSEHOLDS_KEY: Final = f"{LCL_HOUSEHOLDS.prefix}/{PARTITION_OBJECT_NAME}"

# The reader's names for the six columns; the household attributes keep their catalog names.
_FIELDS = ("meter_id", "std_or_tou", "date_time", "kwh", "acorn", "acorn_grouped")
_METER_ID_PATTERN = r"^MAC\d{6}$"
_MISSING_VALUES = ("", "Null", "NULL", "null")
_BOM = b"\xef\xbb\xbf"
# Readings outside the catalog's partition-projection years would be written where no query sees them.
_YEAR_RANGE = next((int(p.range[0]), int(p.range[1])) for p in READINGS.partitions if p.name == "year")
# Rows per vectorised timestamp batch: bounds the (rows x 29) gather's index memory.
_TIMESTAMP_BATCH = 65_536
_CSV_BLOCK_BYTES = 1 << 20  # the reader's default block
_PLACEHOLDER = b"-"  # one column: reported by the CSV reader as a wrong column count, then ignored

# Quarantine precedence: a line with several faults is reported under the first that applies.
_REASONS: Final[tuple[QuarantineReason, ...]] = (
    QuarantineReason.BAD_METER_ID,
    QuarantineReason.BAD_TIMESTAMP,
    QuarantineReason.MISSING_VALUE,
    QuarantineReason.NOT_NUMERIC,
    QuarantineReason.NEGATIVE_VALUE,
)


@dataclass(frozen=True)
class _Checked:
    """The valid lines of a range, column by column, and everything quarantined."""

    raw: pa.Table  # every six-column row as read (_FIELDS, untrimmed strings)
    keep: pa.Array  # boolean per raw row: the line is valid
    meter_ids: pa.ChunkedArray  # trimmed, of the valid lines
    timestamps: I64  # microseconds since the epoch, of the valid lines
    values: pa.Array  # float64 kWh, of the valid lines
    lines_read: int
    quarantined: list[QuarantinedLine]


def parse_london_lcl(data: bytes, first_line_number: int) -> ParsedRange:
    """Parse a byte range of complete LCL lines into staged ``kwh`` rows (STAGED_SCHEMA).

    ``first_line_number`` is the 1-based number, within the whole file, of the range's first line
    (the header, when the range starts the file). A header line is recognised, checked and skipped;
    it does not count in ``lines_read``. DateTime is taken as the reading's timestamp, naive UTC.
    """
    return _staged(_check(data, first_line_number))


def london_households(data: bytes) -> pa.Table:
    """The household attributes (LCL_HOUSEHOLDS_SCHEMA) of a range's valid lines, one row per LCLid.

    A household spans many ranges: merge the tables of all ranges and keep one row per meter_id.
    """
    return _households(_check(data, 1))


def parse_london_lcl_with_households(data: bytes, first_line_number: int) -> tuple[ParsedRange, pa.Table]:
    """:func:`parse_london_lcl` and :func:`london_households` in one pass over the range."""
    checked = _check(data, first_line_number)
    return _staged(checked), _households(checked)


def _staged(checked: _Checked) -> ParsedRange:
    count = len(checked.meter_ids)
    rows = pa.Table.from_arrays(
        [
            checked.meter_ids,
            checked.values,
            pa.array(checked.timestamps.astype("datetime64[us]"), type=pa.timestamp("us")),
            pa.repeat(KWH.name, count),
        ],
        schema=STAGED_SCHEMA,
    )
    return ParsedRange(rows, checked.lines_read, count, checked.quarantined)


def _households(checked: _Checked) -> pa.Table:
    attributes = [name for name in LCL_HOUSEHOLDS_SCHEMA.names if name != "meter_id"]
    fields = pa.Table.from_arrays(
        [checked.meter_ids]
        + [pc.ascii_trim_whitespace(checked.raw.column(name)).filter(checked.keep) for name in attributes],
        names=["meter_id", *attributes],
    )
    # A household's attributes never change in the dataset; "first" keeps file order deterministic.
    grouped = fields.group_by("meter_id", use_threads=False).aggregate(
        [(name, "first") for name in attributes]
    )
    grouped = grouped.rename_columns([name.removesuffix("_first") for name in grouped.column_names])
    return grouped.select(LCL_HOUSEHOLDS_SCHEMA.names).cast(LCL_HOUSEHOLDS_SCHEMA).sort_by("meter_id")


# --------------------------------------------------------------------------------------------- parsing
def _check(data: bytes, first_line_number: int) -> _Checked:
    if first_line_number < 1:
        raise InvalidInput(
            f"first_line_number must be at least 1, got {first_line_number}", field="first_line_number"
        )
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    header_lines = 1 if _has_header(body) else 0
    quarantined: list[QuarantinedLine] = []
    if _needs_line_repair(body):
        body, quarantined = _repair_lines(body, first_line_number, header_lines)
    if not _has_rows(body, header_lines):
        return _Checked(
            raw=pa.table({name: pa.array([], pa.string()) for name in _FIELDS}),
            keep=pa.array([], pa.bool_()),
            meter_ids=pa.chunked_array([], pa.string()),
            timestamps=np.empty(0, dtype=np.int64),
            values=pa.array([], pa.float64()),
            lines_read=0,
            quarantined=quarantined,
        )

    table, wrong_counts = _read_csv(body, header_lines)
    offset = first_line_number - 1  # file line number = offset + line number within the range
    repaired = {line.line_number for line in quarantined}
    quarantined += [
        QuarantinedLine(offset + number, QuarantineReason.COLUMN_COUNT, text)
        for number, text in wrong_counts
        if offset + number not in repaired  # a repaired line's placeholder: already quarantined
    ]
    # The reader numbers lines within the range (header included); the rows it returns are the others.
    lines_in_range = header_lines + table.num_rows + len(wrong_counts)
    is_row = np.ones(lines_in_range + 1, dtype=np.bool_)
    is_row[: header_lines + 1] = False
    is_row[[number for number, _ in wrong_counts]] = False
    row_lines = np.flatnonzero(is_row)
    if len(row_lines) != table.num_rows:  # the reader's numbering contract changed: never guess lines
        raise RuntimeError(f"CSV reader returned {table.num_rows} rows for {len(row_lines)} lines")

    meter_id = pc.ascii_trim_whitespace(table.column("meter_id"))
    timestamps, timestamp_ok = _parse_timestamps(table.column("date_time"))
    kwh = pc.ascii_trim_whitespace(table.column("kwh"))
    missing_mask = pc.is_in(kwh, value_set=pa.array(_MISSING_VALUES))
    missing = missing_mask.to_numpy(zero_copy_only=False)
    values = _to_float(pc.if_else(missing_mask, None, kwh)).to_numpy(zero_copy_only=False)  # null: NaN
    numeric = np.isfinite(values)
    faults = (
        ~pc.match_substring_regex(meter_id, _METER_ID_PATTERN).to_numpy(zero_copy_only=False),
        ~timestamp_ok,
        missing,
        ~numeric,
        numeric & (values < 0),
    )
    reason = np.select(faults, np.arange(1, len(_REASONS) + 1), default=0)
    valid = reason == 0
    quarantined += _quarantine_rows(body, table, np.flatnonzero(~valid), reason, row_lines, offset)
    quarantined.sort(key=lambda line: line.line_number)

    keep = pa.array(valid)
    return _Checked(
        raw=table,
        keep=keep,
        meter_ids=meter_id.filter(keep),
        timestamps=timestamps[valid],
        values=pa.array(values[valid], type=pa.float64()),
        lines_read=lines_in_range - header_lines,
        quarantined=quarantined,
    )


def _quarantine_rows(
    body: bytes, table: pa.Table, bad: I64, reason: I64, row_lines: I64, offset: int
) -> list[QuarantinedLine]:
    """Quarantine the six-column rows that failed a check, each with its line's text.

    Without quoting, joining the fields with commas restores the line, except that the reader turns
    a blank line into six empty fields, just as it reads ``,,,,,``: only the bytes tell them apart.
    """
    if not len(bad):
        return []
    raw = table.take(pa.array(bad)).to_pylist()
    texts = [",".join(row.values()) for row in raw]
    line_starts: I64 | None = None
    lines: list[QuarantinedLine] = []
    for index, row, text in zip(bad.tolist(), raw, texts, strict=True):
        number = int(row_lines[index])
        why = _REASONS[reason[index] - 1]
        if not any(row.values()):
            if line_starts is None:
                newline = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
                line_starts = np.concatenate([[0], newline + 1]).astype(np.int64)
            start = int(line_starts[number - 1])
            end = body.find(b"\n", start)
            if not body[start : end if end >= 0 else len(body)].rstrip(b"\r"):
                why, text = QuarantineReason.COLUMN_COUNT, ""
        lines.append(QuarantinedLine(offset + number, why, text))
    return lines


def _has_header(body: bytes) -> bool:
    """True when the range starts with the LCL header (checked: a different layout is not LCL data)."""
    if not body.startswith(b"LCLid"):
        return False
    end = body.find(b"\n")
    first = body[: end if end >= 0 else len(body)].rstrip(b"\r").decode("utf-8", errors="replace")
    names = tuple(name.strip() for name in first.split(","))
    if names != LCL_COLUMNS:
        raise InvalidInput(f"not an LCL header: {first[:200]!r}, expected {LCL_HEADER!r}", field="header")
    return True


def _has_rows(body: bytes, header_lines: int) -> bool:
    if not header_lines:
        return bool(body)
    end = body.find(b"\n")
    return 0 <= end < len(body) - 1


def _needs_line_repair(body: bytes) -> bool:
    """Lines the CSV reader would misnumber or reject: bare CRs and invalid UTF-8.

    The reader treats a lone CR as a line break, which would shift every line number after it, and
    invalid UTF-8 fails the whole range. Both are rare, so cheap whole-range scans (memchr speed)
    decide whether the line-by-line repair is needed at all.
    """
    bare_cr = b"\r" in body and body.count(b"\r") != body.count(b"\r\n")
    return bare_cr or (not body.isascii() and not _is_utf8(body))


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _repair_lines(
    body: bytes, first_line_number: int, header_lines: int
) -> tuple[bytes, list[QuarantinedLine]]:
    """Quarantine CR-broken and undecodable lines, replacing each with a one-column placeholder."""
    lines = body.split(b"\n")
    terminated = lines[-1] == b""
    if terminated:
        lines.pop()
    quarantined: list[QuarantinedLine] = []
    for index in range(header_lines, len(lines)):
        line = lines[index].removesuffix(b"\r")
        if b"\r" in line or not _is_utf8(line):
            text = line.decode("utf-8", errors="backslashreplace")
            quarantined.append(
                QuarantinedLine(first_line_number + index, QuarantineReason.BAD_ENCODING, text)
            )
            lines[index] = _PLACEHOLDER
    return b"\n".join(lines) + (b"\n" if terminated else b""), quarantined


def _read_csv(body: bytes, header_lines: int) -> tuple[pa.Table, list[tuple[int, str]]]:
    """All six columns as strings, and (line number in the range, text) of each wrong-column-count line."""
    try:
        return _read_csv_blocks(body, header_lines, _CSV_BLOCK_BYTES)
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
    # A line longer than a reader block (a corrupt file): read again with blocks that fit it, so that
    # the line is quarantined like any other rather than failing the range.
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    longest = int(np.diff(np.concatenate([[-1], newlines, [len(body)]])).max())
    return _read_csv_blocks(body, header_lines, max(_CSV_BLOCK_BYTES, 2 * longest))


def _read_csv_blocks(
    body: bytes, header_lines: int, block_size: int
) -> tuple[pa.Table, list[tuple[int, str]]]:
    wrong_counts: list[tuple[int, str]] = []

    def wrong_count(row: pa_csv.InvalidRow) -> str:
        wrong_counts.append((row.number, row.text))
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(body),
        # Single-threaded: only then does the reader number invalid rows (and on a few cores it is
        # as fast as the threaded reader for this narrow, all-string layout).
        read_options=pa_csv.ReadOptions(
            column_names=list(_FIELDS), skip_rows=header_lines, use_threads=False, block_size=block_size
        ),
        # No quoting in LCL data: a quote is an ordinary character, so one line is always one row.
        # Blank lines are kept (as rows of empty fields) so that every line keeps its number.
        parse_options=pa_csv.ParseOptions(
            quote_char=False, ignore_empty_lines=False, invalid_row_handler=wrong_count
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(_FIELDS, pa.string()), strings_can_be_null=False, check_utf8=True
        ),
    )
    if any(number is None for number, _ in wrong_counts):
        raise RuntimeError("CSV reader did not number an invalid row")
    return table, wrong_counts


def _to_float(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Parse decimals; whatever is not a number becomes null (a whole-array cast fails on the first)."""
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        number = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        return pc.cast(pc.if_else(number, text, None), pa.float64())


def _parse_timestamps(column: pa.ChunkedArray) -> tuple[I64, Mask]:
    """Microseconds since the epoch of ``YYYY-MM-DD HH:MM:SS[.fraction]`` strings, and which parsed.

    Strict: two-digit fields, real calendar dates, seconds below 60, up to nine fractional digits
    (truncated to microseconds), a space or ``T`` between date and time, surrounding blanks allowed,
    years within the catalog's partition projection.
    """
    micros: list[I64] = [np.empty(0, dtype=np.int64)]
    ok: list[Mask] = [np.empty(0, dtype=np.bool_)]
    for chunk in column.chunks:
        for start in range(0, len(chunk), _TIMESTAMP_BATCH):
            batch = chunk.slice(start, _TIMESTAMP_BATCH)
            value, parsed = _parse_fixed_width(batch)
            retry = np.flatnonzero(~parsed)
            if len(retry):  # surrounding blanks: rare, so only the failures pay for the trim
                value[retry], parsed[retry] = _parse_fixed_width(pc.ascii_trim_whitespace(batch.take(retry)))
            micros.append(value)
            ok.append(parsed)
    return np.concatenate(micros), np.concatenate(ok)


def _parse_fixed_width(strings: pa.Array) -> tuple[I64, Mask]:
    count = len(strings)
    value = np.zeros(count, dtype=np.int64)
    parsed = np.zeros(count, dtype=np.bool_)
    _, offsets_buffer, data_buffer = strings.buffers()
    if count == 0 or data_buffer is None:
        return value, parsed
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[strings.offset : strings.offset + count + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    lengths = np.diff(offsets)
    if lengths.min() == lengths.max():  # the usual case: one layout, a zero-copy (rows x width) view
        width = int(lengths[0])
        if width == 19 or 21 <= width <= 29:
            value, parsed = _timestamp_fields(data[offsets[0] : offsets[-1]].reshape(count, width))
        return value, parsed
    for width in np.unique(lengths).tolist():
        if width == 19 or 21 <= width <= 29:
            rows = np.flatnonzero(lengths == width)
            value[rows], parsed[rows] = _timestamp_fields(data[offsets[rows][:, None] + np.arange(width)])
    return value, parsed


_DIGIT_POSITIONS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _timestamp_fields(chars: U8) -> tuple[I64, Mask]:
    """Parse rows of equal-length byte strings: 19 characters, or 21 to 29 with a fraction."""
    width = chars.shape[1]
    digits = chars - np.uint8(ord("0"))  # unsigned: wraps, so a digit is exactly a value below 10
    ok = np.all(digits[:, _DIGIT_POSITIONS] < 10, axis=1)
    ok &= (chars[:, 4] == ord("-")) & (chars[:, 7] == ord("-")) & (chars[:, 13] == ord(":"))
    ok &= ((chars[:, 10] == ord(" ")) | (chars[:, 10] == ord("T"))) & (chars[:, 16] == ord(":"))

    def number(first: int, last: int) -> I64:
        result = digits[:, first].astype(np.int64)
        for position in range(first + 1, last):
            result = result * 10 + digits[:, position]
        return result

    fraction = np.zeros(len(chars), dtype=np.int64)
    if width > 19:
        ok &= (chars[:, 19] == ord(".")) & np.all(digits[:, 20:] < 10, axis=1)
        kept = min(6, width - 20)  # timestamp[us]: digits beyond microseconds are truncated
        fraction = number(20, 20 + kept) * 10 ** (6 - kept)
    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute, second = number(11, 13), number(14, 16), number(17, 19)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= _YEAR_RANGE[0]) & (year <= _YEAR_RANGE[1]) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= month_days) & (hour < 24) & (minute < 60) & (second < 60)
    seconds = (_days_from_civil(year, month, day) * 24 + hour) * 3600 + minute * 60 + second
    return np.where(ok, seconds * 1_000_000 + fraction, 0), ok


def _days_from_civil(year: I64, month: I64, day: I64) -> I64:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, vectorised)."""
    year = year - (month <= 2)
    era = np.floor_divide(year, 400)
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return np.asarray(era * 146_097 + day_of_era - 719_468, dtype=np.int64)


# --------------------------------------------------------------------------------------------- synthetic
# Acorn (CACI) groups A-Q; LCL's Acorn_grouped folds them into three bands.
ACORN_GROUPS: Final[dict[str, str]] = {
    **{f"ACORN-{letter}": "Affluent" for letter in "ABCDE"},
    **{f"ACORN-{letter}": "Comfortable" for letter in "FGHIJ"},
    **{f"ACORN-{letter}": "Adversity" for letter in "KLMNOPQ"},
}
SYNTHETIC_NULL_RATE: Final = 0.001
_TOU_SHARE = 0.2  # about a fifth of LCL households were on the dynamic time-of-use tariff
_SLOTS_PER_DAY = 48
_MAX_SYNTHETIC_HOUSEHOLDS = 300_000  # sparse ids (gaps up to 3) must stay within MAC + six digits

# Mean demand shape of a London home by half hour (kW relative to the daily mean): a night trough,
# a breakfast bump and the evening peak around 18:00-20:00.
# fmt: off
_HOME_SHAPE = np.array([
    0.62, 0.55, 0.50, 0.47, 0.45, 0.44, 0.44, 0.44, 0.45, 0.46, 0.50, 0.56,
    0.68, 0.85, 1.00, 1.05, 1.02, 0.96, 0.90, 0.86, 0.84, 0.84, 0.86, 0.88,
    0.90, 0.90, 0.88, 0.88, 0.90, 0.95, 1.05, 1.20, 1.40, 1.62, 1.80, 1.92,
    1.95, 1.90, 1.80, 1.68, 1.55, 1.42, 1.30, 1.18, 1.05, 0.92, 0.80, 0.70,
])
# fmt: on
# Time-of-use customers moved some evening use into the night.
_TOU_SHIFT = np.where((np.arange(48) >= 32) & (np.arange(48) < 40), -0.12, 0.0) + np.where(
    np.arange(48) < 12, 0.08, 0.0
)


class _Synthetic(IntEnum):
    """Hash streams of the synthetic LCL file; never renumber (it would change every value)."""

    ID_GAP = 1201
    TARIFF = 1202
    ACORN = 1203
    SCALE = 1204
    NOISE = 1205


def synthetic_london_file(households: int, days: int, start: date, seed: int) -> bytes:
    """A realistic LCL-format file: the header, then rows ordered by LCLid, then time.

    For demos and tests, since the real dataset cannot be downloaded everywhere. Households get
    sparse MAC ids, a Std/ToU tariff, an Acorn category; each day has 48 half-hourly kWh values with
    a winter-heavy season, a daily shape, weekend mornings and noise; about one reading in a thousand
    is ``Null``, as in the published file. Same arguments, same bytes.
    """
    if not 1 <= households <= _MAX_SYNTHETIC_HOUSEHOLDS:
        raise InvalidInput(f"households must be in [1, {_MAX_SYNTHETIC_HOUSEHOLDS}]", field="households")
    if days < 1:
        raise InvalidInput("days must be at least 1", field="days")
    household = np.arange(households, dtype=np.int64)
    gaps = np.floor(uniform(seed, _Synthetic.ID_GAP, household) * 3).astype(np.int64)
    numbers = 2 + household + np.cumsum(gaps) - gaps[0]  # MAC000002 first, as in the real file
    ids = np.char.add("MAC", np.char.zfill(numbers.astype(str), 6))
    tou = uniform(seed, _Synthetic.TARIFF, household) < _TOU_SHARE
    acorns = np.array(list(ACORN_GROUPS))
    acorn = acorns[np.floor(uniform(seed, _Synthetic.ACORN, household) * len(acorns)).astype(np.int64)]
    group = np.array([ACORN_GROUPS[name] for name in acorn.tolist()])
    # Mean kWh per half hour: lognormal-ish around 0.2 (3,500 kWh a year); affluent homes use more.
    s1, s2 = bit_fields(hash64(seed, _Synthetic.SCALE, household), 2)
    scale = 0.2 * np.exp(0.45 * (s1 + s2 - 1.0) * math.sqrt(6.0)) * np.where(group == "Affluent", 1.3, 1.0)

    slots = days * _SLOTS_PER_DAY
    first = datetime.combine(start, datetime.min.time())
    moments = np.datetime64(first, "s") + np.arange(slots) * np.timedelta64(30, "m")
    # Whole seconds: for finer units Arrow's %S prints a fraction; LCL's is always seven zeros.
    time_text = pc.binary_join_element_wise(
        pc.strftime(pa.array(moments, type=pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S"), ".0000000", ""
    )
    day_of_year = (moments.astype("datetime64[D]") - moments.astype("datetime64[Y]")).astype(np.int64)
    weekend = ((moments.astype("datetime64[D]").astype(np.int64) + 3) % 7) >= 5
    half_hour = np.arange(slots) % _SLOTS_PER_DAY
    season = 1.0 + 0.3 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    weekend_morning = np.where(weekend & (half_hour >= 14) & (half_hour < 24), 1.25, 1.0)
    profile = _HOME_SHAPE[half_hour] * season * weekend_morning  # per slot, all households

    row_household = np.repeat(household, slots)
    row_slot = np.tile(np.arange(slots, dtype=np.int64), households)
    n1, n2, n3, null_u = bit_fields(hash64(seed, _Synthetic.NOISE, row_household, row_slot), 4)
    shape = profile[row_slot] + np.where(tou[row_household], _TOU_SHIFT[half_hour[row_slot]], 0.0)
    noise = np.exp(0.35 * (n1 + n2 + n3 - 1.5) * 2.0)
    kwh = np.round(np.maximum(scale[row_household] * shape * noise, 0.0), 3)
    kwh_text = pc.if_else(pa.array(null_u < SYNTHETIC_NULL_RATE), "Null", pa.array(kwh).cast(pa.string()))

    table = pa.table(
        {
            "LCLid": pa.array(ids).take(pa.array(row_household)),
            "stdorToU": pa.array(np.where(tou, "ToU", "Std")).take(pa.array(row_household)),
            "DateTime": time_text.take(pa.array(row_slot)),
            "KWH/hh (per half hour) ": kwh_text,
            "Acorn": pa.array(acorn).take(pa.array(row_household)),
            "Acorn_grouped": pa.array(group).take(pa.array(row_household)),
        }
    )
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    body: bytes = sink.getvalue().to_pybytes()
    return (LCL_HEADER + "\n").encode() + body
