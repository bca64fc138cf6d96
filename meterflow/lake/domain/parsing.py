"""What every inbound-file parser returns: staged long rows plus the lines it had to quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa

from meterflow.lake.domain.schema import STAGED_SCHEMA


class QuarantineReason(StrEnum):
    COLUMN_COUNT = "wrong_column_count"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_METER = "unknown_meter"
    NOT_NUMERIC = "non_numeric_value"
    PF_OUT_OF_RANGE = "pf_out_of_range"
    MISSING_VALUE = "missing_value"
    BAD_METER_ID = "bad_meter_id"
    BAD_ENCODING = "bad_encoding"
    NEGATIVE_VALUE = "negative_value"  # a quantity that cannot be negative (London kWh), read as < 0


@dataclass(frozen=True)
class QuarantinedLine:
    line_number: int  # 1-based within the file
    reason: QuarantineReason
    line: str


@dataclass
class ParsedRange:
    """The outcome of parsing one byte range of an inbound file.

    ``lines_read == lines_valid + len(quarantined)``; each valid line yields one staged row per
    reading type it carries (six for a HES line, one for a London line).
    """

    rows: pa.Table  # STAGED_SCHEMA
    lines_read: int
    lines_valid: int
    quarantined: list[QuarantinedLine] = field(default_factory=list)

    @classmethod
    def empty(cls) -> ParsedRange:
        return cls(STAGED_SCHEMA.empty_table(), 0, 0, [])
