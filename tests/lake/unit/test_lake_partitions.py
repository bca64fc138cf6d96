"""Partitioning staged rows and merging them into partitions without duplicates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meterflow.lake.domain.partitions import (
    CodedRows,
    MergeOutcome,
    decode_meters,
    decode_parquet,
    decode_piece,
    encode_parquet,
    encode_staged,
    merge_rows,
    partition_order,
    split_by_partition,
)
from meterflow.lake.domain.schema import HES_READING_TYPES, KWH, LONG_SCHEMA, STAGED_SCHEMA, PartitionKey

T0 = datetime(2023, 1, 2, 5)
KW = next(kind for kind in HES_READING_TYPES if kind.name == "kw")


def staged(rows: list[tuple[str, float, datetime, str]]) -> pa.Table:
    """Staged rows from (meter_id, value, time, reading_type)."""
    return pa.Table.from_pylist(
        [
            {"meter_id": meter, "reading_value": value, "reading_date_time": moment, "reading_type": kind}
            for meter, value, moment, kind in rows
        ],
        schema=STAGED_SCHEMA,
    )


def coded(rows: list[tuple[str, float, datetime]]) -> CodedRows:
    return CodedRows.from_long(staged([(meter, value, moment, "kw") for meter, value, moment in rows]))


def merge(existing: pa.Table | None, *incoming: CodedRows, source: str = "hes") -> MergeOutcome:
    return merge_rows(existing, list(incoming), KW, source)


def keys_of(table: pa.Table) -> list[tuple[str, datetime]]:
    return list(zip(table["meter_id"].to_pylist(), table["reading_date_time"].to_pylist(), strict=True))


def decoded(
    parts: dict[PartitionKey, pa.Table], meters: pa.Array, key: PartitionKey
) -> list[tuple[str, float]]:
    table = parts[key]
    ids = meters.take(table["meter"]).to_pylist()
    return sorted(zip(ids, table["reading_value"].to_pylist(), strict=True))


@pytest.fixture
def mixed_rows() -> pa.Table:
    """Rows of two reading types over two hours, deliberately out of order."""
    return staged(
        [
            ("m2", 1.0, T0 + timedelta(minutes=45), "kw"),
            ("m1", 2.0, T0 + timedelta(hours=1), "kw"),
            ("m1", 3.0, T0, "pf"),
            ("m1", 4.0, T0 + timedelta(minutes=15), "kw"),
            ("m3", 5.0, T0 + timedelta(hours=1, minutes=59, seconds=59), "pf"),
            ("m2", 6.0, T0, "kw"),
        ]
    )


def test_partition_key_prefix_is_hive_style() -> None:
    # GIVEN a partition of kW readings in hour 05 of 2023-01-02
    key = PartitionKey.of("kw", datetime(2023, 1, 2, 5, 30))
    # WHEN its prefix and object key are built THEN they are hive-style and zero-padded
    assert key.prefix == "readings/parquet/reading_type=kw/year=2023/month=01/day=02/hour=05/"
    assert key.object_key == key.prefix + "data.parquet"
    assert key.hour_start == datetime(2023, 1, 2, 5)
    assert PartitionKey.from_token(key.to_token()) == key


def test_split_groups_rows_by_reading_type_and_hour(mixed_rows: pa.Table) -> None:
    # GIVEN rows spread over two types and two hours
    # WHEN split by partition
    meters, parts = split_by_partition(mixed_rows)
    # THEN the range's meters form one sorted dictionary
    assert meters.to_pylist() == ["m1", "m2", "m3"]
    # AND there is one coded table per (type, hour), holding exactly the rows of that type and hour
    assert set(parts) == {
        PartitionKey.of("kw", T0),
        PartitionKey.of("kw", T0 + timedelta(hours=1)),
        PartitionKey.of("pf", T0),
        PartitionKey.of("pf", T0 + timedelta(hours=1)),
    }
    assert decoded(parts, meters, PartitionKey.of("kw", T0)) == [("m1", 4.0), ("m2", 1.0), ("m2", 6.0)]
    assert decoded(parts, meters, PartitionKey.of("kw", T0 + timedelta(hours=1))) == [("m1", 2.0)]
    assert decoded(parts, meters, PartitionKey.of("pf", T0)) == [("m1", 3.0)]
    assert decoded(parts, meters, PartitionKey.of("pf", T0 + timedelta(hours=1))) == [("m3", 5.0)]
    for key, table in parts.items():
        # AND every row lies inside its partition's hour
        assert table.column_names == ["meter", "reading_value", "reading_date_time"]
        for moment in table["reading_date_time"].to_pylist():
            assert key.hour_start <= moment < key.hour_start + timedelta(hours=1)
    assert sum(table.num_rows for table in parts.values()) == mixed_rows.num_rows


def test_split_of_nothing_is_empty() -> None:
    # GIVEN no rows WHEN split THEN no partitions
    meters, parts = split_by_partition(STAGED_SCHEMA.empty_table())
    assert (len(meters), parts) == (0, {})


def test_staged_object_round_trips_through_its_index(mixed_rows: pa.Table) -> None:
    # GIVEN a range's partitions encoded as one staged object
    meters, parts = split_by_partition(mixed_rows)
    staged_object = encode_staged(meters, parts)
    data = memoryview(staged_object.data)
    # WHEN the dictionary and each piece are read back through the index
    meters_at = staged_object.meters
    read_meters = decode_meters(data[meters_at["offset"] : meters_at["offset"] + meters_at["length"]])
    pieces = {
        str(piece["partition"]): decode_piece(
            data[int(piece["offset"]) : int(piece["offset"]) + int(piece["length"])]
        )
        for piece in staged_object.pieces
    }
    # THEN they equal what was staged, hour by hour with each hour's types together
    assert read_meters.equals(meters)
    assert [piece["partition"] for piece in staged_object.pieces] == [
        key.to_token() for key in partition_order(list(parts))
    ]
    assert [str(piece["partition"]) for piece in staged_object.pieces][:2] == [
        "pf/2023010205",
        "kw/2023010205",
    ]
    for key, table in parts.items():
        assert pieces[key.to_token()].equals(table)


def test_merge_into_nothing_adds_everything_sorted() -> None:
    # GIVEN incoming rows in no order and no existing partition
    incoming = coded([("m2", 1.0, T0), ("m1", 2.0, T0 + timedelta(minutes=15)), ("m1", 3.0, T0)])
    # WHEN merged
    outcome = merge(None, incoming)
    # THEN all are added, sorted by (meter_id, reading_date_time)
    assert (outcome.rows_added, outcome.rows_duplicate) == (3, 0)
    assert keys_of(outcome.table) == [("m1", T0), ("m1", T0 + timedelta(minutes=15)), ("m2", T0)]
    assert outcome.table["reading_value"].to_pylist() == [3.0, 2.0, 1.0]


def test_merge_writes_the_reading_types_unit_obis_phase_and_the_source() -> None:
    # GIVEN kW rows from a file of source "historian"
    outcome = merge(None, coded([("m1", 1.0, T0), ("m2", 2.0, T0)]), source="historian")
    # WHEN the partition is decoded as a reader would see it
    rows = decode_parquet(encode_parquet(outcome.table)).to_pylist()
    # THEN every row carries the kW reading type's unit, OBIS code and phase and the file's source
    assert {(r["unit"], r["obis_code"], r["phase"], r["reading_source"]) for r in rows} == {
        (KW.unit, KW.obis_code, KW.phase, "historian")
    }


def test_existing_rows_win_over_incoming_duplicates() -> None:
    # GIVEN an existing partition and incoming rows, two of which repeat existing keys with new values
    existing = merge(None, coded([("m1", 1.0, T0), ("m2", 2.0, T0)]), source="old").table
    incoming = coded([("m2", 99.0, T0), ("m1", 98.0, T0), ("m3", 3.0, T0)])
    # WHEN merged
    outcome = merge(decode_parquet(encode_parquet(existing)), incoming, source="new")
    # THEN the existing values (and their source) are kept, only the new key is added, counts are exact
    assert (outcome.rows_added, outcome.rows_duplicate) == (1, 2)
    assert keys_of(outcome.table) == [("m1", T0), ("m2", T0), ("m3", T0)]
    assert outcome.table["reading_value"].to_pylist() == [1.0, 2.0, 3.0]
    assert outcome.table["reading_source"].to_pylist() == ["old", "old", "new"]


def test_duplicates_within_incoming_keep_the_first() -> None:
    # GIVEN incoming rows that repeat a key among themselves, across two ranges' dictionaries
    first = coded([("m1", 1.0, T0), ("m1", 2.0, T0)])
    second = coded([("m2", 3.0, T0), ("m1", 4.0, T0)])
    # WHEN merged into an existing partition holding another key
    existing = merge(None, coded([("m0", 0.0, T0)])).table
    outcome = merge(existing, first, second)
    # THEN one row per key remains, the first incoming one wins, and duplicates are counted
    assert (outcome.rows_added, outcome.rows_duplicate) == (2, 2)
    assert keys_of(outcome.table) == [("m0", T0), ("m1", T0), ("m2", T0)]
    assert outcome.table["reading_value"].to_pylist() == [0.0, 1.0, 3.0]


def test_merging_the_same_rows_again_adds_nothing() -> None:
    # GIVEN a partition produced by a merge
    incoming = coded([("m1", 1.0, T0), ("m2", 2.0, T0 + timedelta(minutes=30))])
    first = merge(None, incoming)
    # WHEN the same rows are merged again into the stored partition
    stored = decode_parquet(encode_parquet(first.table))
    second = merge(stored, incoming)
    # THEN nothing is added and the partition's bytes are unchanged
    assert (second.rows_added, second.rows_duplicate) == (0, 2)
    assert encode_parquet(second.table) == encode_parquet(first.table)


def test_same_meter_at_different_times_is_not_a_duplicate() -> None:
    # GIVEN one meter at two times and two meters at one time
    incoming = coded([("m1", 1.0, T0), ("m1", 2.0, T0 + timedelta(minutes=15)), ("m2", 3.0, T0)])
    # WHEN merged THEN nothing is dropped
    assert merge(None, incoming).rows_added == 3


def test_rows_spanning_more_than_an_hour_still_merge_exactly() -> None:
    # GIVEN a London-style partition merged with rows days apart (wider than one sort key can hold)
    incoming = coded(
        [("m1", 1.0, T0 + timedelta(days=3)), ("m1", 2.0, T0), ("m1", 3.0, T0 + timedelta(days=3))]
    )
    # WHEN merged THEN the rows are sorted by time and the duplicate found
    outcome = merge_rows(None, [incoming], KWH, "london-lcl")
    assert keys_of(outcome.table) == [("m1", T0), ("m1", T0 + timedelta(days=3))]
    assert (outcome.rows_added, outcome.rows_duplicate) == (2, 1)


def test_merge_of_empty_into_nothing() -> None:
    # GIVEN no rows at all WHEN merged THEN nothing is added or duplicated
    outcome = merge(None, coded([]))
    assert (outcome.table.num_rows, outcome.rows_added, outcome.rows_duplicate) == (0, 0, 0)


def test_encode_parquet_is_deterministic_and_round_trips() -> None:
    # GIVEN a merged partition table
    table = merge(None, coded([("m2", 1.0, T0), ("m1", 2.0, T0 + timedelta(minutes=15))])).table
    # WHEN encoded twice
    first = encode_parquet(table)
    second = encode_parquet(table)
    # THEN the bytes are identical and decode back to the same rows, as plain strings
    assert first == second
    assert decode_parquet(first).equals(table.cast(LONG_SCHEMA))
    assert pq.read_schema(pa.BufferReader(first)).field("meter_id").type == pa.string()


def test_merge_output_is_independent_of_incoming_order(mixed_rows: pa.Table) -> None:
    # GIVEN the same distinct rows in two orders
    body = mixed_rows.filter(pa.compute.equal(mixed_rows["reading_type"], "pf"))
    reversed_body = body.take(pa.array(list(reversed(range(body.num_rows)))))
    # WHEN merged and encoded THEN the partition bytes are the same
    assert encode_parquet(merge(None, CodedRows.from_long(body)).table) == encode_parquet(
        merge(None, CodedRows.from_long(reversed_body)).table
    )
