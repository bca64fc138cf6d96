"""The head-end system's simulated meter fleet.

A reading is a pure function of (fleet seed, meter index, slot). Nothing is stored, so:

* any page of ``GET /readings`` costs O(page size), whatever its offset;
* the number of records in any window is exact arithmetic: every slot carries
  ``meter_count - missing_per_slot`` readings (a fixed number of meters miss each slot, a
  different pseudo-random set every slot);
* an export can be cut into chunks that workers compute independently and in any order.

Records are ordered by (time, device_id), as the HES API documents. Ground-truth events
(outages, spikes, dips, theft-like drops, missing and late reads) are functions of the same
coordinates, so they can be listed for any window and later score anomaly and outage detection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meterflow.core.hashing import bit_fields, hash64, uniform
from meterflow.core.timeutil import from_epoch_seconds, to_epoch_seconds
from meterflow.hes.domain.weather import temperature_c

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_SECONDS_PER_DAY = 86_400
_THEFT_BLOCK_DAYS = 30
_DEVICE_NAMESPACE = uuid.UUID("6f1c1b0e-6d1a-4c53-9a55-6d6574657266")
_READS_PER_ARRIVAL_BLOCK = 1 << 20


class Stream(IntEnum):
    """Independent random streams; never renumber (it would change every simulated value)."""

    METER_CLASS = 1
    RATED_LOAD = 2
    BASE_FRACTION = 3
    HEATING = 4
    COOLING = 5
    POWER_FACTOR = 6
    VOLTAGE = 7
    PHASE_SHIFT = 8
    LOAD_NOISE = 20
    PF_NOISE = 21  # also voltage noise and late arrival
    SPIKE = 30  # spikes and dips
    OUTAGE = 40
    THEFT = 50
    MISSING = 70


class MeterClass(IntEnum):
    RESIDENTIAL = 0
    RESIDENTIAL_EV = 1
    COMMERCIAL = 2
    INDUSTRIAL = 3


# Cumulative share of each class in the fleet, in MeterClass order.
_CLASS_CUMULATIVE_SHARE = np.array([0.70, 0.80, 0.95, 1.00])
# Rated (connected) load in kW per class: the ``load`` field of a reading.
_RATED_KW_RANGE = np.array([[5, 12], [10, 20], [20, 80], [100, 400]], dtype=np.float64)
_POWER_FACTOR_RANGE = np.array([[0.90, 0.98], [0.90, 0.98], [0.85, 0.95], [0.80, 0.92]])

# Hourly demand shape (fraction of the class's peak), weekday then weekend, per class.
# fmt: off
_PROFILES = np.array(
    [
        [  # residential: morning and evening peaks
            [0.25, 0.2, 0.18, 0.17, 0.17, 0.2, 0.35, 0.6, 0.65, 0.45, 0.35, 0.33,
             0.35, 0.33, 0.32, 0.35, 0.45, 0.65, 0.9, 1, 0.95, 0.8, 0.55, 0.35],
            [0.3, 0.22, 0.19, 0.18, 0.18, 0.2, 0.25, 0.4, 0.6, 0.7, 0.7, 0.68,
             0.65, 0.6, 0.55, 0.55, 0.6, 0.75, 0.9, 1, 0.95, 0.8, 0.6, 0.4],
        ],
        [  # residential with an electric vehicle: evening peak plus overnight charging
            [0.7, 0.75, 0.7, 0.55, 0.3, 0.2, 0.3, 0.5, 0.55, 0.4, 0.3, 0.3,
             0.3, 0.3, 0.3, 0.32, 0.4, 0.55, 0.75, 0.85, 0.8, 0.75, 0.8, 0.75],
            [0.7, 0.75, 0.7, 0.55, 0.3, 0.2, 0.22, 0.35, 0.5, 0.6, 0.6, 0.6,
             0.55, 0.5, 0.5, 0.5, 0.55, 0.65, 0.8, 0.85, 0.8, 0.75, 0.8, 0.75],
        ],
        [  # commercial: business hours on weekdays, quiet weekends
            [0.2, 0.2, 0.2, 0.2, 0.2, 0.25, 0.4, 0.7, 0.9, 1, 1, 1,
             0.95, 1, 1, 0.95, 0.9, 0.75, 0.5, 0.35, 0.3, 0.25, 0.22, 0.2],
            [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.22, 0.25, 0.3, 0.35, 0.4, 0.4,
             0.4, 0.4, 0.38, 0.35, 0.3, 0.28, 0.25, 0.22, 0.2, 0.2, 0.2, 0.2],
        ],
        [  # industrial: two shifts on weekdays, reduced weekend shift
            [0.55, 0.55, 0.55, 0.55, 0.55, 0.6, 0.9, 1, 1, 1, 1, 0.95,
             0.9, 1, 1, 1, 1, 0.95, 0.9, 0.9, 0.85, 0.8, 0.6, 0.55],
            [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6,
             0.6, 0.6, 0.6, 0.6, 0.55, 0.5, 0.45, 0.45, 0.4, 0.4, 0.4, 0.4],
        ],
    ],
    dtype=np.float64,
)
# fmt: on
_PROFILES = np.concatenate([_PROFILES, _PROFILES[..., :1]], axis=-1)  # close the day for interpolation
_PROFILE_WIDTH = _PROFILES.shape[-1]
_PROFILES_FLAT = _PROFILES.reshape(-1)


@dataclass(frozen=True)
class EventRates:
    """How often the simulator injects each ground-truth event."""

    late_fraction: float = 0.10
    late_max_minutes: int = 1_440
    missing_fraction: float = 0.002
    outage_per_meter_day: float = 0.002
    outage_max_slots: int = 16
    spike_per_reading: float = 0.0005
    dip_per_reading: float = 0.0005
    theft_per_meter_month: float = 0.005

    def __post_init__(self) -> None:
        for name in (
            "late_fraction",
            "missing_fraction",
            "outage_per_meter_day",
            "spike_per_reading",
            "dip_per_reading",
            "theft_per_meter_month",
        ):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.late_max_minutes < 1 or self.outage_max_slots < 1:
            raise ValueError("late_max_minutes and outage_max_slots must be at least 1")


@dataclass(frozen=True)
class FleetConfig:
    """Everything that determines a simulated fleet: same config, same readings, forever."""

    meter_count: int = 10_000
    interval_minutes: int = 15
    start: datetime = datetime(2023, 1, 1)
    seed: int = 20_230_227
    rates: EventRates = field(default_factory=EventRates)

    def __post_init__(self) -> None:
        if self.meter_count < 1:
            raise ValueError("meter_count must be at least 1")
        if self.interval_minutes < 1 or 1_440 % self.interval_minutes:
            raise ValueError("interval_minutes must divide a day (1, 5, 15, 30, 60, ...)")


@dataclass(frozen=True)
class SlotWindow:
    """A half-open range of slots [first_slot, end_slot) and the records it holds."""

    first_slot: int
    end_slot: int
    records_per_slot: int

    @property
    def slot_count(self) -> int:
        return max(0, self.end_slot - self.first_slot)

    @property
    def record_count(self) -> int:
        return self.slot_count * self.records_per_slot


@dataclass(frozen=True)
class ArrivalWindow:
    """The reads the head-end received in [first_arrival_s, end_arrival_s), epoch seconds.

    Whatever their reading time: a late read of an earlier slot belongs to the window it arrived in.
    """

    first_arrival_s: int
    end_arrival_s: int


@dataclass(frozen=True)
class ReadingBatch:
    """Readings in (time, device_id) order, as parallel numpy columns."""

    meter_index: I64
    slot: I64
    time_s: I64
    arrival_s: I64
    load: I64
    crrnt: F64
    pf: F64
    kva: F64
    kw: F64
    vltg: F64
    device_ids: pa.Array  # the fleet's ids, indexed by meter_index

    def __len__(self) -> int:
        return len(self.meter_index)

    def to_arrow(self) -> pa.Table:
        """The inbound (wide) schema of seed 001, table 1, in its column order."""
        count = len(self)
        return pa.table(
            {
                "time": pa.array(self.time_s.astype("datetime64[s]").astype("datetime64[us]")),
                "arrival_time": pa.array(self.arrival_s.astype("datetime64[s]").astype("datetime64[us]")),
                "device_id": self.device_ids.take(pa.array(self.meter_index)),
                "measure_name": pa.repeat("readings", count),
                "load": pa.array(self.load),
                "crrnt": pa.array(self.crrnt),
                "pf": pa.array(self.pf),
                "kva": pa.array(self.kva),
                "kw": pa.array(self.kw),
                "vltg": pa.array(self.vltg),
            }
        )


class Fleet:
    """A deterministic fleet of meters; see the module docstring for the model."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        n = config.meter_count
        meters = np.arange(n, dtype=np.int64)
        seed = config.seed
        self.device_id_list: list[str] = [
            str(uuid.uuid3(_DEVICE_NAMESPACE, f"{seed}:{index}")) for index in range(n)
        ]
        self.device_ids = pa.array(self.device_id_list, type=pa.string())
        # position in (device_id) order -> meter index, and its inverse
        self.meter_at_position: I64 = np.argsort(np.array(self.device_id_list), kind="stable").astype(
            np.int64
        )
        self.position_of_meter: I64 = np.empty(n, dtype=np.int64)
        self.position_of_meter[self.meter_at_position] = meters

        self.meter_class: I64 = np.searchsorted(
            _CLASS_CUMULATIVE_SHARE, uniform(seed, Stream.METER_CLASS, meters), side="right"
        ).astype(np.int64)
        low, high = _RATED_KW_RANGE[self.meter_class, 0], _RATED_KW_RANGE[self.meter_class, 1]
        self.rated_kw: I64 = np.round(low + (high - low) * uniform(seed, Stream.RATED_LOAD, meters)).astype(
            np.int64
        )
        self.base_fraction: F64 = 0.05 + 0.10 * uniform(seed, Stream.BASE_FRACTION, meters)
        self.heating_per_degree: F64 = 0.04 * uniform(seed, Stream.HEATING, meters)
        self.cooling_per_degree: F64 = 0.06 * uniform(seed, Stream.COOLING, meters)
        pf_low, pf_high = _POWER_FACTOR_RANGE[self.meter_class, 0], _POWER_FACTOR_RANGE[self.meter_class, 1]
        self.power_factor: F64 = pf_low + (pf_high - pf_low) * uniform(seed, Stream.POWER_FACTOR, meters)
        self.nominal_kv: F64 = 0.230 * (0.97 + 0.04 * uniform(seed, Stream.VOLTAGE, meters))
        self.phase_shift_hours: F64 = 2.0 * uniform(seed, Stream.PHASE_SHIFT, meters) - 1.0

        rates = config.rates
        self.missing_per_slot = min(n - 1, round(rates.missing_fraction * n)) if n > 1 else 0
        self.records_per_slot = n - self.missing_per_slot

    # ----------------------------------------------------------------------------- time <-> slot
    @property
    def interval_seconds(self) -> int:
        return self.config.interval_minutes * 60

    @cached_property
    def origin_s(self) -> int:
        return to_epoch_seconds(self.config.start)

    @property
    def slots_per_day(self) -> int:
        return _SECONDS_PER_DAY // self.interval_seconds

    def slot_time(self, slot: int) -> datetime:
        return from_epoch_seconds(self.origin_s + slot * self.interval_seconds)

    def slot_at_or_after(self, moment: datetime) -> int:
        """The first slot whose time is >= moment (never before the fleet's first slot)."""
        seconds = to_epoch_seconds(moment)
        if moment.microsecond:
            seconds += 1
        return max(0, -((self.origin_s - seconds) // self.interval_seconds))

    def window(self, start: datetime, end: datetime) -> SlotWindow:
        """Slots with time in [start, end)."""
        first = self.slot_at_or_after(start)
        last = max(first, self.slot_at_or_after(end))
        return SlotWindow(first, last, self.records_per_slot)

    # ----------------------------------------------------------------------------- records
    def missing_positions(self, slot: int) -> I64:
        """Sorted (device_id-order) positions of the meters that miss ``slot``."""
        k = self.missing_per_slot
        if k == 0:
            return np.empty(0, dtype=np.int64)
        n = self.config.meter_count
        draws = 0
        chosen: I64 = np.empty(0, dtype=np.int64)
        while len(chosen) < k:
            candidates = np.floor(
                uniform(self.config.seed, Stream.MISSING, slot, np.arange(draws, draws + 2 * k)) * n
            ).astype(np.int64)
            draws += 2 * k
            combined = np.concatenate([chosen, candidates])
            _, first_seen = np.unique(combined, return_index=True)
            chosen = combined[np.sort(first_seen)][:k]
        return np.sort(chosen)

    def locate(self, window: SlotWindow, first_index: int, count: int) -> tuple[I64, I64]:
        """(meter_index, slot) of records ``first_index .. first_index+count-1`` (0-based) of a window."""
        count = max(0, min(count, window.record_count - first_index))
        if count == 0 or first_index < 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        per_slot = window.records_per_slot
        all_positions = np.arange(self.config.meter_count, dtype=np.int64)
        meters: list[I64] = []
        slots: list[I64] = []
        index, remaining = first_index, count
        while remaining > 0:
            slot_offset, within = divmod(index, per_slot)
            slot = window.first_slot + slot_offset
            take = min(remaining, per_slot - within)
            present = np.delete(all_positions, self.missing_positions(slot))
            meters.append(self.meter_at_position[present[within : within + take]])
            slots.append(np.full(take, slot, dtype=np.int64))
            index += take
            remaining -= take
        return np.concatenate(meters), np.concatenate(slots)

    def records(self, window: SlotWindow, first_index: int, count: int) -> ReadingBatch:
        """Records ``first_index .. first_index+count-1`` (0-based) of a window, in API order."""
        meter_index, slot = self.locate(window, first_index, count)
        return self.readings(meter_index, slot)

    def readings(self, meter_index: I64, slot: I64) -> ReadingBatch:
        """The readings of the given (meter, slot) pairs, vectorised."""
        seed = self.config.seed
        time_s = self.origin_s + slot * self.interval_seconds
        cls = self.meter_class[meter_index]
        rated = self.rated_kw[meter_index].astype(np.float64)

        local_hour = np.mod(
            np.mod(time_s, _SECONDS_PER_DAY) / 3600.0 + self.phase_shift_hours[meter_index], 24.0
        )
        weekday = np.mod(time_s // _SECONDS_PER_DAY + 3, 7)  # 1970-01-01 was a Thursday: Monday = 0
        hour_floor = np.floor(local_hour).astype(np.int64)
        frac = local_hour - hour_floor
        profile_row = (cls * 2 + (weekday >= 5)) * _PROFILE_WIDTH + hour_floor
        shape = (1 - frac) * _PROFILES_FLAT[profile_row] + frac * _PROFILES_FLAT[profile_row + 1]

        # Temperature depends on the slot only: compute it once per distinct slot.
        distinct_slots, slot_row = np.unique(slot, return_inverse=True)
        temperature = temperature_c(self.origin_s + distinct_slots * self.interval_seconds, seed)[slot_row]
        heating = np.maximum(0.0, 15.5 - temperature) * self.heating_per_degree[meter_index]
        cooling = np.maximum(0.0, temperature - 22.0) * self.cooling_per_degree[meter_index]
        n1, n2, n3, n4 = bit_fields(hash64(seed, Stream.LOAD_NOISE, meter_index, slot), 4)
        noise = np.exp(0.12 * (n1 + n2 + n3 + n4 - 2.0) * np.sqrt(3.0))
        kw = rated * (self.base_fraction[meter_index] + 0.55 * shape) * (1.0 + heating + cooling) * noise

        kw = kw * self._event_multiplier(meter_index, slot)
        outage = self.in_outage(meter_index, slot)
        kw = np.where(outage, 0.0, np.clip(kw, 0.001, rated * 1.6))

        pf_u, kv_u, late_u, delay_u = bit_fields(hash64(seed, Stream.PF_NOISE, meter_index, slot), 4)
        pf = np.round(np.clip(self.power_factor[meter_index] + 0.02 * (pf_u - 0.5), 0.5, 1.0), 3)
        sag = 0.004 * kw / rated  # voltage drops a little with load
        kv = self.nominal_kv[meter_index] * (1 + 0.006 * (kv_u - 0.5)) - sag * 0.23
        vltg = np.where(outage, 0.0, np.round(kv, 3))
        kw = np.round(kw, 3)
        kva = np.round(kw / pf, 3)  # pf <= 1 and kw has 3 decimals, so kva >= kw survives rounding
        crrnt = np.round(np.divide(kva, vltg, out=np.zeros_like(kva), where=vltg > 0), 3)

        return ReadingBatch(
            meter_index=meter_index,
            slot=slot,
            time_s=time_s,
            arrival_s=self._arrival_from(time_s, late_u, delay_u),
            load=self.rated_kw[meter_index],
            crrnt=np.asarray(crrnt, dtype=np.float64),
            pf=np.asarray(pf, dtype=np.float64),
            kva=np.asarray(kva, dtype=np.float64),
            kw=np.asarray(kw, dtype=np.float64),
            vltg=np.asarray(vltg, dtype=np.float64),
            device_ids=self.device_ids,
        )

    # ----------------------------------------------------------------------------- arrivals
    @property
    def max_arrival_delay_s(self) -> int:
        """The latest a read arrives after its time: ``late_max_minutes``."""
        return self.config.rates.late_max_minutes * 60

    def arrival_seconds(self, meter_index: I64, slot: I64) -> I64:
        """When the head-end receives each (meter, slot) reading, in epoch seconds.

        One hash per reading, far cheaper than :meth:`readings`: an export by arrival time counts
        its records with it before computing any of them.
        """
        _, _, late_u, delay_u = bit_fields(hash64(self.config.seed, Stream.PF_NOISE, meter_index, slot), 4)
        return self._arrival_from(self.origin_s + slot * self.interval_seconds, late_u, delay_u)

    def _arrival_from(self, time_s: I64, late_u: F64, delay_u: F64) -> I64:
        # The one arrival formula. Its uniforms share the PF_NOISE hash with the power-factor and
        # voltage noise, so readings() passes the ones it has already drawn instead of hashing twice.
        rates = self.config.rates
        late = late_u < rates.late_fraction
        delay_s = 60 + np.floor(delay_u * (rates.late_max_minutes * 60 - 59)).astype(np.int64)
        return np.asarray(time_s + np.where(late, delay_s, 0), dtype=np.int64)

    def arrival_candidates(self, window: ArrivalWindow) -> tuple[int, int]:
        """[first_slot, end_slot): the slots whose reads can arrive in ``window``.

        A read arrives at its time or up to :attr:`max_arrival_delay_s` later, so the candidates
        start that much before the window and end with it.
        """
        if window.end_arrival_s <= window.first_arrival_s:
            return 0, 0
        first = self._first_slot_at_or_after_s(window.first_arrival_s - self.max_arrival_delay_s)
        return first, max(first, self._first_slot_at_or_after_s(window.end_arrival_s))

    def received_counts(self, window: ArrivalWindow, first_slot: int, end_slot: int) -> I64:
        """How many reads of each slot in [first_slot, end_slot) arrive in ``window``.

        Only the slots near the window's edges are hashed: every read of a slot taken at or after
        the window's start and more than :attr:`max_arrival_delay_s` before its end arrives in it,
        so such a slot holds exactly ``records_per_slot``. The cost is bounded by the maximum
        delay, not by the window's length.
        """
        slots = np.arange(first_slot, max(first_slot, end_slot), dtype=np.int64)
        counts: I64 = np.full(len(slots), self.records_per_slot, dtype=np.int64)
        time_s = self.origin_s + slots * self.interval_seconds
        straddling = np.flatnonzero(
            (time_s < window.first_arrival_s) | (time_s + self.max_arrival_delay_s >= window.end_arrival_s)
        )
        for block in self._slot_blocks(slots[straddling]):
            _, received_slots = self._received_reads(window, block)
            counts[block - first_slot] = np.bincount(
                np.searchsorted(block, received_slots), minlength=len(block)
            )
        return counts

    def received_records(self, window: ArrivalWindow, first_slot: int, end_slot: int) -> ReadingBatch:
        """The reads of slots [first_slot, end_slot) that arrive in ``window``, in API order."""
        meters: list[I64] = [np.empty(0, dtype=np.int64)]
        slots: list[I64] = [np.empty(0, dtype=np.int64)]
        for block in self._slot_blocks(np.arange(first_slot, max(first_slot, end_slot), dtype=np.int64)):
            block_meters, block_slots = self._received_reads(window, block)
            meters.append(block_meters)
            slots.append(block_slots)
        return self.readings(np.concatenate(meters), np.concatenate(slots))

    def _received_reads(self, window: ArrivalWindow, slots: I64) -> tuple[I64, I64]:
        """(meter_index, slot) of the reads of ``slots`` (ascending) that arrive in ``window``."""
        reported = np.ones((len(slots), self.config.meter_count), dtype=np.bool_)
        for row, slot_number in enumerate(slots.tolist()):
            reported[row, self.missing_positions(slot_number)] = False
        # row-major order: by slot, then by device_id position, the API's (time, device_id) order
        rows, positions = np.nonzero(reported)
        meter_index: I64 = self.meter_at_position[positions]
        slot: I64 = slots[rows]
        arrival_s = self.arrival_seconds(meter_index, slot)
        arrived = (arrival_s >= window.first_arrival_s) & (arrival_s < window.end_arrival_s)
        return meter_index[arrived], slot[arrived]

    def _slot_blocks(self, slots: I64) -> list[I64]:
        """``slots`` cut into blocks of at most ~1 M reads, so memory stays bounded for any fleet."""
        per_block = max(1, _READS_PER_ARRIVAL_BLOCK // self.config.meter_count)
        return [slots[start : start + per_block] for start in range(0, len(slots), per_block)]

    def _first_slot_at_or_after_s(self, seconds: int) -> int:
        return max(0, -((self.origin_s - seconds) // self.interval_seconds))

    # ----------------------------------------------------------------------------- events
    def reading_events(
        self, meter_index: I64, slot: I64
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], F64]:
        """(spike, dip, size) per reading; size multiplies kW (above 1 for spikes, below for dips)."""
        rates = self.config.rates
        event_u, size_u = bit_fields(hash64(self.config.seed, Stream.SPIKE, meter_index, slot), 2)
        spike = event_u < rates.spike_per_reading
        dip = ~spike & (event_u < rates.spike_per_reading + rates.dip_per_reading)
        size = np.where(spike, 2.5 + 1.5 * size_u, 0.05 + 0.25 * size_u)
        return spike, dip, size

    def _event_multiplier(self, meter_index: I64, slot: I64) -> F64:
        spike, dip, size = self.reading_events(meter_index, slot)
        multiplier = np.where(spike | dip, size, 1.0)
        if self.config.rates.theft_per_meter_month > 0:
            theft, depth = self._theft(meter_index, slot)
            multiplier = np.where(theft, multiplier * depth, multiplier)
        return np.asarray(multiplier, dtype=np.float64)

    def outage_span(self, meter_index: I64, day: I64) -> tuple[npt.NDArray[np.bool_], I64, I64]:
        """(has_outage, first_slot, end_slot) of each meter's outage on each fleet day, if any."""
        rates = self.config.rates
        has_u, start_u, length_u, _ = bit_fields(hash64(self.config.seed, Stream.OUTAGE, meter_index, day), 4)
        has = has_u < rates.outage_per_meter_day
        per_day = self.slots_per_day
        start = day * per_day + np.floor(start_u * per_day).astype(np.int64)
        length = 1 + np.floor(length_u * rates.outage_max_slots).astype(np.int64)
        end = np.minimum(start + length, (day + 1) * per_day)  # outages end by midnight
        return has, start, end

    def in_outage(self, meter_index: I64, slot: I64) -> npt.NDArray[np.bool_]:
        has, start, end = self.outage_span(meter_index, slot // self.slots_per_day)
        return has & (slot >= start) & (slot < end)

    def theft_span(self, meter_index: I64, block: I64) -> tuple[npt.NDArray[np.bool_], I64, I64, F64]:
        """(has_theft, first_slot, end_slot, depth) of a meter's theft-like drop in a 30-day block."""
        rates = self.config.rates
        has_u, start_u, length_u, depth_u = bit_fields(
            hash64(self.config.seed, Stream.THEFT, meter_index, block), 4
        )
        has = has_u < rates.theft_per_meter_month
        block_first_day = block * _THEFT_BLOCK_DAYS
        start_day = block_first_day + np.floor(start_u * 20).astype(np.int64)
        length_days = 3 + np.floor(length_u * 8).astype(np.int64)
        per_day = self.slots_per_day
        first = start_day * per_day
        end = np.minimum(start_day + length_days, block_first_day + _THEFT_BLOCK_DAYS) * per_day
        depth = 0.3 + 0.2 * depth_u
        return has, first, end, depth

    def _theft(self, meter_index: I64, slot: I64) -> tuple[npt.NDArray[np.bool_], F64]:
        block = slot // (self.slots_per_day * _THEFT_BLOCK_DAYS)
        has, first, end, depth = self.theft_span(meter_index, block)
        return has & (slot >= first) & (slot < end), depth
