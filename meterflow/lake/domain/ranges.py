"""Cutting an inbound object into byte ranges that start and end on line boundaries.

Without S3 Select (closed to new customers) a range worker reads its range with one ranged GET,
so the splitter aligns every boundary to the byte after a newline: each line belongs to exactly one
range and no worker needs to read past its end.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

# Reads ``length`` bytes at ``offset`` (fewer at the end of the object).
ReadAt = Callable[[int, int], bytes]

_PROBE_BYTES = 4_096
_MAX_LINE_BYTES = 1_048_576  # a "line" longer than this is not a meter reading: give up


@dataclass(frozen=True)
class RangeTuning:
    max_ranges: int = 150  # the reference's max_workers
    min_range_bytes: int = 16 * 1024 * 1024  # below this, task overhead outweighs parallelism
    max_range_bytes: int = 300 * 1024 * 1024  # the reference's cap


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int  # inclusive, the first byte of a line
    end: int  # exclusive, the byte after a newline (or the object's size)

    def to_state(self) -> dict[str, int]:
        return {"index": self.index, "start": self.start, "end": self.end}


class UnsplittableObject(ValueError):
    """No newline within the probe limit: the object is not a line-oriented file."""


def target_range_bytes(size: int, tuning: RangeTuning) -> int:
    """min(size / max_ranges, cap), but never below the minimum that keeps task overhead small."""
    per_range = math.ceil(size / tuning.max_ranges) if size else 0
    return max(tuning.min_range_bytes, min(per_range, tuning.max_range_bytes))


def next_line_start(offset: int, size: int, read_at: ReadAt) -> int:
    """The offset of the first line that starts at or after ``offset``."""
    if offset <= 0:
        return 0
    position = offset - 1  # if the byte before ``offset`` is a newline, a line starts at ``offset``
    scanned = 0
    while position < size:
        chunk = read_at(position, _PROBE_BYTES)
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
        scanned += len(chunk)
        if scanned > _MAX_LINE_BYTES:
            raise UnsplittableObject(f"no newline within {_MAX_LINE_BYTES} bytes after offset {offset}")
    return size


def split_ranges(size: int, read_at: ReadAt, tuning: RangeTuning | None = None) -> list[ByteRange]:
    """Line-aligned ranges covering ``[0, size)`` exactly, in order, none empty."""
    tuning = tuning or RangeTuning()
    if size <= 0:
        return []
    step = target_range_bytes(size, tuning)
    boundaries = [0]
    tentative = step
    while tentative < size:
        aligned = next_line_start(tentative, size, read_at)
        if aligned >= size:
            break
        if aligned > boundaries[-1]:
            boundaries.append(aligned)
        tentative = max(aligned, tentative) + step
    boundaries.append(size)
    return [ByteRange(index, start, end) for index, (start, end) in enumerate(itertools.pairwise(boundaries))]
