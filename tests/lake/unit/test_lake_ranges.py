"""Cutting an inbound object into line-aligned byte ranges."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterflow.lake.domain.ranges import (
    ByteRange,
    RangeTuning,
    ReadAt,
    UnsplittableObject,
    split_ranges,
    target_range_bytes,
)

SMALL = RangeTuning(max_ranges=10, min_range_bytes=16, max_range_bytes=1_000)


def reader(data: bytes) -> ReadAt:
    return lambda offset, length: data[offset : offset + length]


def split(data: bytes, tuning: RangeTuning = SMALL) -> list[ByteRange]:
    return split_ranges(len(data), reader(data), tuning)


def assert_line_aligned(data: bytes, ranges: list[ByteRange]) -> None:
    """Ranges cover [0, size) exactly, contiguously, in order, none empty, each starting a line."""
    assert ranges, "a non-empty object has at least one range"
    assert ranges[0].start == 0
    assert ranges[-1].end == len(data)
    assert [r.index for r in ranges] == list(range(len(ranges)))
    for before, after in itertools.pairwise(ranges):
        assert before.end == after.start
    for byte_range in ranges:
        assert byte_range.end > byte_range.start
        if byte_range.start > 0:
            assert data[byte_range.start - 1 : byte_range.start] == b"\n"
    assert b"".join(data[r.start : r.end] for r in ranges) == data


def lines_of(lengths: list[int]) -> bytes:
    return b"".join(b"x" * length + b"\n" for length in lengths)


@pytest.fixture
def hundred_lines() -> bytes:
    return lines_of([7 + (i % 13) for i in range(100)])


def test_ranges_cover_the_object_on_line_boundaries(hundred_lines: bytes) -> None:
    # GIVEN a file of 100 lines of varying length
    # WHEN it is split with a small target size
    ranges = split(hundred_lines)
    # THEN the ranges cover it exactly, each boundary right after a newline, and it is split at all
    assert_line_aligned(hundred_lines, ranges)
    assert len(ranges) > 1


def test_every_range_holds_whole_lines(hundred_lines: bytes) -> None:
    # GIVEN a split file
    ranges = split(hundred_lines)
    # WHEN each range is read on its own
    chunks = [hundred_lines[r.start : r.end] for r in ranges]
    # THEN every range ends with a newline, so no line straddles two ranges
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert sum(chunk.count(b"\n") for chunk in chunks) == 100


def test_file_without_trailing_newline_keeps_its_last_line() -> None:
    # GIVEN a file whose last line has no newline
    data = lines_of([10] * 20) + b"tail-without-newline"
    # WHEN it is split
    ranges = split(data)
    # THEN the last range ends at the object's size and includes the unterminated line
    assert_line_aligned(data, ranges)
    assert data[ranges[-1].start : ranges[-1].end].endswith(b"tail-without-newline")


def test_tiny_file_is_one_range() -> None:
    # GIVEN a file smaller than the minimum range size
    data = b"a,b\n"
    # WHEN it is split with the default tuning
    ranges = split_ranges(len(data), reader(data))
    # THEN it is a single range covering everything
    assert ranges == [ByteRange(0, 0, len(data))]


def test_empty_object_has_no_ranges() -> None:
    # GIVEN an empty object WHEN split THEN there is nothing to read
    assert split_ranges(0, reader(b"")) == []


def test_object_without_newline_within_the_limit_is_unsplittable() -> None:
    # GIVEN a 2 MiB object with no newline (not a line-oriented file)
    data = b"x" * (2 * 1024 * 1024)
    tuning = RangeTuning(max_ranges=4, min_range_bytes=1024, max_range_bytes=10 * 1024 * 1024)
    # WHEN it is split THEN the splitter gives up rather than scanning forever
    with pytest.raises(UnsplittableObject):
        split_ranges(len(data), reader(data), tuning)


def test_a_single_huge_line_at_the_end_needs_no_newline() -> None:
    # GIVEN one short line followed by a long unterminated tail shorter than the probe limit
    data = b"head\n" + b"y" * 10_000
    # WHEN split THEN the tail is simply the end of the last range
    ranges = split(data, RangeTuning(max_ranges=100, min_range_bytes=16, max_range_bytes=1_000))
    assert_line_aligned(data, ranges)


@pytest.mark.parametrize(
    ("size", "tuning", "expected"),
    [
        # size / max_ranges is below the minimum: the minimum wins
        (1_000, RangeTuning(max_ranges=10, min_range_bytes=500, max_range_bytes=10_000), 500),
        # size / max_ranges between min and max: it is used (rounded up)
        (10_001, RangeTuning(max_ranges=10, min_range_bytes=10, max_range_bytes=10_000), 1_001),
        # size / max_ranges above the cap: the cap wins
        (1_000_000, RangeTuning(max_ranges=10, min_range_bytes=10, max_range_bytes=5_000), 5_000),
        # the minimum beats the cap when they conflict (task overhead first)
        (1_000_000, RangeTuning(max_ranges=10, min_range_bytes=9_000, max_range_bytes=5_000), 9_000),
        (0, RangeTuning(max_ranges=10, min_range_bytes=10, max_range_bytes=100), 10),
    ],
)
def test_target_range_bytes_rules(size: int, tuning: RangeTuning, expected: int) -> None:
    # GIVEN an object size and a tuning WHEN the target is computed THEN min/max/max_ranges apply
    assert target_range_bytes(size, tuning) == expected


def test_range_count_respects_max_ranges() -> None:
    # GIVEN a file of many equal lines and a tuning allowing at most 5 ranges
    data = lines_of([9] * 1_000)
    tuning = RangeTuning(max_ranges=5, min_range_bytes=1, max_range_bytes=10**9)
    # WHEN split
    ranges = split(data, tuning)
    # THEN there are about max_ranges ranges, never more
    assert_line_aligned(data, ranges)
    assert 1 < len(ranges) <= 5


def test_ranges_are_near_the_target_size() -> None:
    # GIVEN equal 10-byte lines and a 100-byte target
    data = lines_of([9] * 200)
    tuning = RangeTuning(max_ranges=1_000, min_range_bytes=100, max_range_bytes=100)
    # WHEN split
    ranges = split(data, tuning)
    # THEN every range but the last is the target rounded up to the next line start
    assert_line_aligned(data, ranges)
    assert all(r.end - r.start <= 110 for r in ranges)
    assert len(ranges) == 20


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=80),
    trailing_newline=st.booleans(),
    min_range=st.integers(min_value=1, max_value=400),
    max_ranges=st.integers(min_value=1, max_value=20),
)
def test_split_is_line_aligned_for_any_line_lengths(
    lengths: list[int], trailing_newline: bool, min_range: int, max_ranges: int
) -> None:
    # GIVEN random lines (empty ones included), with or without a final newline
    data = lines_of(lengths)
    if not trailing_newline:
        data = data[:-1] + b"z"
    tuning = RangeTuning(max_ranges=max_ranges, min_range_bytes=min_range, max_range_bytes=10_000)
    # WHEN split
    ranges = split(data, tuning)
    # THEN the ranges partition the object on line boundaries
    assert_line_aligned(data, ranges)
