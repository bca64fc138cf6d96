"""Partitioning staged rows and merging them into partitions without duplicates.

Each partition (reading type x hour) is one Parquet object, so rewriting it is a single PUT that
readers see entirely or not at all. A merge keeps exactly one row per (meter_id,
reading_date_time): rows already in the lake win over incoming ones (a replayed or re-delivered
file changes nothing), and the output is sorted by (meter_id, reading_date_time) so the same rows
always produce the same bytes, and one meter's history reads few row groups.

Between staging and merging, rows travel meter-coded: a range's meter ids are stored once, as a
sorted dictionary, and each row carries an int32 code into it. Meter ids are 36-character UUIDs
repeated six times per HES line, so this moves a fraction of the bytes, and the merge sorts
integers instead of strings. The columns that are constant per partition and file (unit,
obis_code, phase: the reading type's; reading_source: the file's) are not staged at all; the merge
writes them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterflow.lake.domain.schema import (
    LONG_SCHEMA,
    PARQUET_COMPRESSION,
    READING_TYPE_NAMES,
    READING_TYPES,
    PartitionKey,
    ReadingType,
)

_MICROS_PER_HOUR = 3_600_000_000
ROW_GROUP_ROWS = 65_536
_CONSTANT_COLUMNS = ("unit", "obis_code", "phase", "reading_source")
_READING_TYPE_BY_NAME = {kind.name: kind for kind in READING_TYPES}

# A staged piece: the rows of one partition from one range, meters as codes into the range's dictionary.
CODED_SCHEMA = pa.schema(
    [
        pa.field("meter", pa.int32(), nullable=False),
        pa.field("reading_value", pa.float64(), nullable=False),
        pa.field("reading_date_time", pa.timestamp("us"), nullable=False),
    ]
)
_METERS_SCHEMA = pa.schema([pa.field("meter_id", pa.string(), nullable=False)])


def reading_type_named(name: str) -> ReadingType:
    return _READING_TYPE_BY_NAME[name]


def hour_index(stamps: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Hours since the epoch of each timestamp[us]."""
    return np.asarray(np.floor_divide(_micros(stamps), _MICROS_PER_HOUR), dtype=np.int64)


def _micros(stamps: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _sorted_codes(meter_ids: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(sorted unique meter ids, int32 code of each input row into them)."""
    if isinstance(meter_ids, pa.ChunkedArray):
        meter_ids = meter_ids.combine_chunks()
    encoded = pc.dictionary_encode(meter_ids)
    dictionary = encoded.dictionary
    order = np.asarray(pc.sort_indices(dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return dictionary.take(pa.array(order)), rank[indices]


@dataclass(frozen=True)
class CodedRows:
    """Rows of one partition whose meters are codes into ``meters`` (sorted, unique meter ids)."""

    meters: pa.Array
    rows: pa.Table  # CODED_SCHEMA

    @classmethod
    def from_long(cls, table: pa.Table) -> CodedRows:
        """Code rows that carry meter ids as strings (meter_id, reading_value, reading_date_time)."""
        meters, codes = _sorted_codes(table["meter_id"])
        rows = pa.table(
            [pa.array(codes, pa.int32()), table["reading_value"], table["reading_date_time"]],
            schema=CODED_SCHEMA,
        )
        return cls(meters, rows)

    @property
    def num_rows(self) -> int:
        return int(self.rows.num_rows)


def _time_major(key: PartitionKey) -> tuple[int, int, int, int, int]:
    return (key.year, key.month, key.day, key.hour, READING_TYPE_NAMES.index(key.reading_type))


def partition_order(keys: Sequence[PartitionKey]) -> list[PartitionKey]:
    """Hour by hour, each hour's reading types together: the order pieces are staged and merged in,
    so a run of consecutive partitions covers few hours and therefore few ranges of a time-ordered file."""
    return sorted(keys, key=_time_major)


def split_by_partition(rows: pa.Table) -> tuple[pa.Array, dict[PartitionKey, pa.Table]]:
    """Staged rows (STAGED_SCHEMA) as one meter dictionary and a coded table (CODED_SCHEMA) per partition.

    One stable sort by (hour, reading type) and one take, then zero-copy slices per partition.
    """
    if rows.num_rows == 0:
        return pa.array([], pa.string()), {}
    meters, codes = _sorted_codes(rows["meter_id"])
    hours = hour_index(rows["reading_date_time"])
    types = rows["reading_type"].combine_chunks().dictionary_encode()
    type_names = types.dictionary.to_pylist()
    type_codes = np.asarray(types.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    group = hours * len(type_names) + type_codes
    order = np.argsort(group, kind="stable")
    sorted_groups = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ends = np.r_[starts[1:], len(order)]
    take = pa.array(order)
    coded = pa.table(
        [
            pa.array(codes[order], pa.int32()),
            rows["reading_value"].take(take),
            rows["reading_date_time"].take(take),
        ],
        schema=CODED_SCHEMA,
    )
    result: dict[PartitionKey, pa.Table] = {}
    for start, end in zip(starts, ends, strict=True):
        hour, type_code = divmod(int(sorted_groups[start]), len(type_names))
        moment = np.datetime64(hour, "h").astype("datetime64[s]").astype(object)
        result[PartitionKey.of(type_names[type_code], moment)] = coded.slice(int(start), int(end - start))
    return meters, result


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _read_ipc(data: bytes | memoryview) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


@dataclass(frozen=True)
class StagedObject:
    """One range's staged rows: its meter dictionary, then a stream per partition, and their index.

    ``meters`` and each piece give ``(offset, length)`` in ``data``, so a reader that wants a run
    of consecutive partitions fetches the dictionary and one byte range, whatever else it holds.
    Staged rows live for minutes and are read once: Arrow IPC (zstd) writes and reads several times
    faster than Parquet.
    """

    data: bytes
    meters: dict[str, int]  # offset, length, count
    pieces: list[dict[str, int | str]]  # partition (token), offset, length, rows


def encode_staged(meters: pa.Array, parts: dict[PartitionKey, pa.Table]) -> StagedObject:
    dictionary = _ipc(pa.table([meters], schema=_METERS_SCHEMA))
    blobs = [dictionary]
    pieces: list[dict[str, int | str]] = []
    offset = len(dictionary)
    for key in partition_order(list(parts)):
        blob = _ipc(parts[key])
        pieces.append(
            {"partition": key.to_token(), "offset": offset, "length": len(blob), "rows": parts[key].num_rows}
        )
        blobs.append(blob)
        offset += len(blob)
    return StagedObject(
        b"".join(blobs), {"offset": 0, "length": len(dictionary), "count": len(meters)}, pieces
    )


def decode_meters(data: bytes | memoryview) -> pa.Array:
    return _read_ipc(data)["meter_id"].combine_chunks()


def decode_piece(data: bytes | memoryview) -> pa.Table:
    return _read_ipc(data)


def encode_parquet(table: pa.Table) -> bytes:
    """Parquet (zstd, statistics) with the arrow schema left out: readers see plain strings whether
    a column was written from strings or from a dictionary.

    Only the constant columns are dictionary-encoded: sorted meter ids and readings compress
    better plain under zstd than as a dictionary page plus indices.
    """
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        use_dictionary=[name for name in _CONSTANT_COLUMNS if name in table.column_names] or True,
        store_schema=False,
    )
    return sink.getvalue()


def decode_parquet(data: bytes, schema: pa.Schema = LONG_SCHEMA) -> pa.Table:
    table = pq.read_table(pa.py_buffer(data))
    return table.select(schema.names).cast(schema)


@dataclass(frozen=True)
class MergeOutcome:
    table: pa.Table  # LONG_SCHEMA's columns; strings may be dictionary-encoded
    rows_added: int
    rows_duplicate: int


def _unify(dictionaries: list[pa.Array]) -> tuple[pa.Array, list[np.ndarray | None]]:
    """One sorted dictionary for several, and for each the map from its codes to the unified ones
    (None where the dictionary already is the unified one)."""
    first = dictionaries[0]
    if all(d is first or d.equals(first) for d in dictionaries[1:]):
        return first, [None] * len(dictionaries)
    union = pc.unique(pa.concat_arrays(dictionaries))
    union = union.take(pc.sort_indices(union))
    return union, [
        np.asarray(pc.index_in(d, value_set=union).to_numpy(zero_copy_only=False), dtype=np.int64)
        for d in dictionaries
    ]


def _constant(value: str, count: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(count, dtype=np.int32)), pa.array([value]))


def merge_rows(
    existing: pa.Table | None,
    incoming: Sequence[CodedRows],
    reading_type: ReadingType,
    reading_source: str,
) -> MergeOutcome:
    """Union ``incoming`` into ``existing`` keeping one row per (meter_id, reading_date_time).

    Existing rows win (with their own unit, phase, source...); among incoming duplicates the first
    wins; incoming rows get the reading type's unit, OBIS code and phase and ``reading_source``.
    The result is sorted by (meter_id, reading_date_time).
    """
    sources = list(incoming)
    existing_rows = 0
    if existing is not None and existing.num_rows:
        existing = existing.select(LONG_SCHEMA.names).cast(LONG_SCHEMA)
        existing_rows = existing.num_rows
        sources.insert(0, CodedRows.from_long(existing))
    sources = [source for source in sources if source.num_rows]
    incoming_rows = sum(source.num_rows for source in incoming)
    if not sources:
        empty = LONG_SCHEMA.empty_table()
        return MergeOutcome(empty, 0, 0)
    meters, maps = _unify([source.meters for source in sources])
    codes = np.concatenate(
        [
            np.asarray(source.rows["meter"].to_numpy(), dtype=np.int64)
            if mapping is None
            else mapping[np.asarray(source.rows["meter"].to_numpy(), dtype=np.int64)]
            for source, mapping in zip(sources, maps, strict=True)
        ]
    )
    micros = np.concatenate([_micros(source.rows["reading_date_time"]) for source in sources])
    base = int(micros.min())
    if int(micros.max()) - base < 2**32:
        # one int64 key per row: (meter code, microseconds into the span); a stable sort keeps priority
        keys = (codes << 32) | (micros - base)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        keep = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    else:  # a span of more than ~71 minutes cannot share one key; np.lexsort is stable too
        order = np.lexsort((micros, codes))
        same = (codes[order][1:] == codes[order][:-1]) & (micros[order][1:] == micros[order][:-1])
        keep = np.r_[True, ~same]
    selected = order[keep]

    # the partition's own dictionary: only the meters it holds, still sorted
    out_codes = codes[selected]
    used = np.flatnonzero(np.bincount(out_codes, minlength=len(meters)))
    local = np.empty(len(meters), dtype=np.int32)
    local[used] = np.arange(len(used), dtype=np.int32)
    meter_id = pa.DictionaryArray.from_arrays(pa.array(local[out_codes]), meters.take(pa.array(used)))
    take = pa.array(selected)
    values = pa.concat_arrays([source.rows["reading_value"].combine_chunks() for source in sources])
    stamps = pa.concat_arrays([source.rows["reading_date_time"].combine_chunks() for source in sources])
    constants = {
        "unit": reading_type.unit,
        "obis_code": reading_type.obis_code,
        "phase": reading_type.phase,
        "reading_source": reading_source,
    }
    from_existing = selected < existing_rows
    columns: dict[str, pa.Array] = {}
    for name in _CONSTANT_COLUMNS:
        if existing is None or not from_existing.any():
            columns[name] = _constant(constants[name], len(selected))
        else:
            # existing rows keep their own values; the new value sits after them in one array
            pool = pa.concat_arrays([existing[name].combine_chunks(), pa.array([constants[name]])])
            columns[name] = pool.take(pa.array(np.where(from_existing, selected, existing_rows)))
    table = pa.table(
        {
            "meter_id": meter_id,
            "reading_value": values.take(take),
            "reading_date_time": stamps.take(take),
            **columns,
        }
    ).select(LONG_SCHEMA.names)
    added = table.num_rows - existing_rows
    return MergeOutcome(table, added, incoming_rows - added)
