"""Partitioning staged rows and merging them into partitions without duplicates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from meterflow.domain.lake.partitions import (
    decode_parquet,
    encode_parquet,
    merge_rows,
    split_by_partition,
)
from meterflow.domain.lake.schema import LONG_SCHEMA, STAGED_SCHEMA, PartitionKey

T0 = datetime(2023, 1, 2, 5)


def staged(rows: list[tuple[str, float, datetime, str]]) -> pa.Table:
    """Staged rows from (meter_id, value, time, reading_type)."""
    return pa.Table.from_pylist(
        [
            {
                "meter_id": meter,
                "reading_value": value,
                "reading_date_time": moment,
                "unit": "kW",
                "obis_code": "1.0.1.7.0.255",
                "phase": "total",
                "reading_source": "hes",
                "reading_type": kind,
            }
            for meter, value, moment, kind in rows
        ],
        schema=STAGED_SCHEMA,
    )


def long(rows: list[tuple[str, float, datetime]]) -> pa.Table:
    return staged([(meter, value, moment, "kw") for meter, value, moment in rows]).select(LONG_SCHEMA.names)


def keys_of(table: pa.Table) -> list[tuple[str, datetime]]:
    return list(zip(table["meter_id"].to_pylist(), table["reading_date_time"].to_pylist(), strict=True))


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
    parts = split_by_partition(mixed_rows)
    # THEN there is one table per (type, hour), holding exactly the rows of that type and hour
    assert set(parts) == {
        PartitionKey.of("kw", T0),
        PartitionKey.of("kw", T0 + timedelta(hours=1)),
        PartitionKey.of("pf", T0),
        PartitionKey.of("pf", T0 + timedelta(hours=1)),
    }
    assert sorted(parts[PartitionKey.of("kw", T0)]["reading_value"].to_pylist()) == [1.0, 4.0, 6.0]
    assert parts[PartitionKey.of("kw", T0 + timedelta(hours=1))]["reading_value"].to_pylist() == [2.0]
    assert parts[PartitionKey.of("pf", T0)]["reading_value"].to_pylist() == [3.0]
    assert parts[PartitionKey.of("pf", T0 + timedelta(hours=1))]["reading_value"].to_pylist() == [5.0]
    for key, table in parts.items():
        # AND the reading_type column is dropped (it lives in the path), every row inside the hour
        assert table.column_names == LONG_SCHEMA.names
        for moment in table["reading_date_time"].to_pylist():
            assert key.hour_start <= moment < key.hour_start + timedelta(hours=1)
    assert sum(table.num_rows for table in parts.values()) == mixed_rows.num_rows


def test_split_of_nothing_is_empty() -> None:
    # GIVEN no rows WHEN split THEN no partitions
    assert split_by_partition(STAGED_SCHEMA.empty_table()) == {}


def test_merge_into_nothing_adds_everything_sorted() -> None:
    # GIVEN incoming rows in no order and no existing partition
    incoming = long([("m2", 1.0, T0), ("m1", 2.0, T0 + timedelta(minutes=15)), ("m1", 3.0, T0)])
    # WHEN merged
    outcome = merge_rows(None, incoming)
    # THEN all are added, sorted by (meter_id, reading_date_time)
    assert (outcome.rows_added, outcome.rows_duplicate) == (3, 0)
    assert keys_of(outcome.table) == [("m1", T0), ("m1", T0 + timedelta(minutes=15)), ("m2", T0)]
    assert outcome.table["reading_value"].to_pylist() == [3.0, 2.0, 1.0]


def test_existing_rows_win_over_incoming_duplicates() -> None:
    # GIVEN an existing partition and incoming rows, two of which repeat existing keys with new values
    existing = long([("m1", 1.0, T0), ("m2", 2.0, T0)])
    incoming = long([("m2", 99.0, T0), ("m1", 98.0, T0), ("m3", 3.0, T0)])
    # WHEN merged
    outcome = merge_rows(existing, incoming)
    # THEN the existing values are kept, only the new key is added, and the counts are exact
    assert (outcome.rows_added, outcome.rows_duplicate) == (1, 2)
    assert keys_of(outcome.table) == [("m1", T0), ("m2", T0), ("m3", T0)]
    assert outcome.table["reading_value"].to_pylist() == [1.0, 2.0, 3.0]


def test_duplicates_within_incoming_keep_the_first() -> None:
    # GIVEN incoming rows that repeat a key among themselves
    incoming = long([("m1", 1.0, T0), ("m1", 2.0, T0), ("m2", 3.0, T0), ("m1", 4.0, T0)])
    # WHEN merged into an existing partition holding another key
    outcome = merge_rows(long([("m0", 0.0, T0)]), incoming)
    # THEN one row per key remains, the first incoming one wins, and duplicates are counted
    assert (outcome.rows_added, outcome.rows_duplicate) == (2, 2)
    assert keys_of(outcome.table) == [("m0", T0), ("m1", T0), ("m2", T0)]
    assert outcome.table["reading_value"].to_pylist() == [0.0, 1.0, 3.0]


def test_merging_the_same_rows_again_adds_nothing() -> None:
    # GIVEN a partition produced by a merge
    incoming = long([("m1", 1.0, T0), ("m2", 2.0, T0 + timedelta(minutes=30))])
    first = merge_rows(None, incoming)
    # WHEN the same rows are merged again
    second = merge_rows(first.table, incoming)
    # THEN nothing is added and the table is unchanged
    assert (second.rows_added, second.rows_duplicate) == (0, 2)
    assert second.table.equals(first.table)


def test_same_meter_at_different_times_is_not_a_duplicate() -> None:
    # GIVEN one meter at two times and two meters at one time
    incoming = long([("m1", 1.0, T0), ("m1", 2.0, T0 + timedelta(minutes=15)), ("m2", 3.0, T0)])
    # WHEN merged THEN nothing is dropped
    assert merge_rows(None, incoming).rows_added == 3


def test_merge_of_empty_into_nothing() -> None:
    # GIVEN no rows at all WHEN merged THEN nothing is added or duplicated
    outcome = merge_rows(None, LONG_SCHEMA.empty_table())
    assert (outcome.table.num_rows, outcome.rows_added, outcome.rows_duplicate) == (0, 0, 0)


def test_encode_parquet_is_deterministic_and_round_trips(mixed_rows: pa.Table) -> None:
    # GIVEN a merged partition table
    table = merge_rows(None, mixed_rows.select(LONG_SCHEMA.names)).table
    # WHEN encoded twice (and once from an equal but separately built table)
    first = encode_parquet(table)
    second = encode_parquet(table)
    rebuilt = encode_parquet(pa.Table.from_pylist(table.to_pylist(), schema=LONG_SCHEMA))
    # THEN the bytes are identical and decode back to the same rows
    assert first == second == rebuilt
    assert decode_parquet(first).equals(table)


def test_merge_output_is_independent_of_incoming_order(mixed_rows: pa.Table) -> None:
    # GIVEN the same distinct rows in two orders
    body = mixed_rows.select(LONG_SCHEMA.names)
    reversed_body = body.take(pa.array(list(reversed(range(body.num_rows)))))
    # WHEN merged and encoded THEN the partition bytes are the same
    assert encode_parquet(merge_rows(None, body).table) == encode_parquet(
        merge_rows(None, reversed_body).table
    )
