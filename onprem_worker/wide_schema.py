"""The HES wide schema (seed 001, table 1): the one definition, shared by the worker and meterflow.

The worker image ships without meterflow, so the schema lives here and
:mod:`meterflow.lake.domain.schema` imports it (meterflow may import ``onprem_worker``, never the
reverse). It has the same types as meterflow's ``ReadingBatch.to_arrow``; a test holds them equal.
"""

from __future__ import annotations

import pyarrow as pa

# In file column order (the HES file is headerless).
WIDE_SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us")),
        pa.field("arrival_time", pa.timestamp("us")),
        pa.field("device_id", pa.string()),
        pa.field("measure_name", pa.string()),
        pa.field("load", pa.int64()),
        pa.field("crrnt", pa.float64()),
        pa.field("pf", pa.float64()),
        pa.field("kva", pa.float64()),
        pa.field("kw", pa.float64()),
        pa.field("vltg", pa.float64()),
    ]
)
WIDE_COLUMNS: tuple[str, ...] = tuple(WIDE_SCHEMA.names)
