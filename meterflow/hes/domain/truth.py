"""Ground truth: the events the simulator injected into a window, for scoring detectors.

Kinds: ``outage`` (vltg and kW at 0), ``theft`` (a sustained drop of kW to 30-50 %), ``spike``,
``dip``, ``missing`` (no reading at all) and ``late`` (``arrival_time`` after ``time``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyarrow as pa

from meterflow.hes.domain.fleet import _THEFT_BLOCK_DAYS, Fleet, SlotWindow

ALL_KINDS = frozenset({"outage", "theft", "spike", "dip", "missing", "late"})
_BATCH_RECORDS = 500_000
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("meter_index", pa.int64()),
        ("device_id", pa.string()),
        ("start_time", pa.timestamp("us")),
        ("end_time", pa.timestamp("us")),
        ("magnitude", pa.float64()),
    ]
)


def _table(
    fleet: Fleet,
    kind: str,
    meters: np.ndarray,
    first_slot: np.ndarray,
    end_slot: np.ndarray,
    magnitude: np.ndarray,
) -> pa.Table:
    def to_time(slots: np.ndarray) -> pa.Array:
        seconds = fleet.origin_s + slots.astype(np.int64) * fleet.interval_seconds
        return pa.array(seconds.astype("datetime64[s]").astype("datetime64[us]"))

    return pa.table(
        {
            "kind": pa.repeat(kind, len(meters)),
            "meter_index": pa.array(meters.astype(np.int64)),
            "device_id": fleet.device_ids.take(pa.array(meters.astype(np.int64))),
            "start_time": to_time(first_slot),
            "end_time": to_time(end_slot),
            "magnitude": pa.array(magnitude.astype(np.float64)),
        },
        schema=SCHEMA,
    )


def _spans(fleet: Fleet, window: SlotWindow, kind: str) -> pa.Table:
    """Outages (per meter-day) or thefts (per meter, 30-day block) overlapping the window."""
    unit = fleet.slots_per_day * (_THEFT_BLOCK_DAYS if kind == "theft" else 1)
    units = np.arange(window.first_slot // unit, (window.end_slot - 1) // unit + 1, dtype=np.int64)
    meters = np.arange(fleet.config.meter_count, dtype=np.int64)
    grid_meter, grid_unit = (a.ravel() for a in np.meshgrid(meters, units, indexing="ij"))
    if kind == "theft":
        has, first, end, depth = fleet.theft_span(grid_meter, grid_unit)
        magnitude = depth
    else:
        has, first, end = fleet.outage_span(grid_meter, grid_unit)
        magnitude = np.zeros(len(grid_meter))
    keep = has & (first < window.end_slot) & (end > window.first_slot)
    return _table(fleet, kind, grid_meter[keep], first[keep], end[keep], magnitude[keep])


def _per_reading(fleet: Fleet, window: SlotWindow, kinds: set[str]) -> list[pa.Table]:
    tables: list[pa.Table] = []
    for first in range(0, window.record_count, _BATCH_RECORDS):
        batch = fleet.records(window, first, _BATCH_RECORDS)
        spike, dip, size = fleet.reading_events(batch.meter_index, batch.slot)
        late = batch.arrival_s > batch.time_s
        selections = {
            "spike": (spike, size),
            "dip": (dip, size),
            "late": (late, (batch.arrival_s - batch.time_s) / 60.0),
        }
        for kind, (mask, magnitude) in selections.items():
            if kind in kinds:
                slots = batch.slot[mask]
                tables.append(_table(fleet, kind, batch.meter_index[mask], slots, slots + 1, magnitude[mask]))
    if "missing" in kinds:
        for slot in range(window.first_slot, window.end_slot):
            meters = fleet.meter_at_position[fleet.missing_positions(slot)]
            slots = np.full(len(meters), slot, dtype=np.int64)
            tables.append(_table(fleet, "missing", meters, slots, slots + 1, np.zeros(len(meters))))
    return tables


def ground_truth(
    fleet: Fleet, start: datetime, end: datetime, kinds: Iterable[str] | None = None
) -> pa.Table:
    """Every injected event overlapping [start, end), sorted by start time then device id."""
    wanted = set(kinds) if kinds is not None else set(ALL_KINDS)
    unknown = wanted - ALL_KINDS
    if unknown:
        raise ValueError(f"unknown event kinds {sorted(unknown)}")
    window = fleet.window(start, end)
    if window.slot_count == 0:
        return SCHEMA.empty_table()
    tables = [_spans(fleet, window, kind) for kind in ("outage", "theft") if kind in wanted]
    tables += _per_reading(fleet, window, wanted)
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables).sort_by(
        [("start_time", "ascending"), ("device_id", "ascending"), ("kind", "ascending")]
    )
