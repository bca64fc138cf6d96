"""The HES fleet simulator: determinism, value ranges, ordering, shape and injected events."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterflow.hes.domain.fleet import EventRates, Fleet, FleetConfig, MeterClass
from meterflow.hes.domain.truth import ground_truth

DAY = datetime(2023, 2, 27)


def test_same_config_gives_the_same_readings_in_a_fresh_fleet(fleet: Fleet) -> None:
    # GIVEN a second fleet built from the same configuration
    twin = Fleet(fleet.config)
    window = fleet.window(DAY, DAY + timedelta(hours=6))
    # WHEN both compute the same window
    ours, theirs = fleet.records(window, 0, window.record_count), twin.records(window, 0, window.record_count)
    # THEN every column is identical
    assert ours.to_arrow().equals(theirs.to_arrow())
    assert fleet.device_id_list == twin.device_id_list


def test_a_different_seed_gives_different_meters_and_readings(fleet: Fleet) -> None:
    other = Fleet(FleetConfig(meter_count=fleet.config.meter_count, seed=fleet.config.seed + 1))
    assert set(other.device_id_list).isdisjoint(fleet.device_id_list)


@settings(max_examples=60, deadline=None)
@given(first=st.integers(min_value=0, max_value=2_000_000), count=st.integers(min_value=1, max_value=3_000))
def test_any_slice_equals_the_same_records_computed_as_part_of_a_larger_range(first: int, count: int) -> None:
    # GIVEN a window of ten days
    fleet = _property_fleet()
    window = fleet.window(DAY, DAY + timedelta(days=10))
    first = min(first, window.record_count - 1)
    # WHEN a slice is computed alone and as part of a range starting earlier
    alone = fleet.records(window, first, count)
    start = max(0, first - 137)
    wider = fleet.records(window, start, count + (first - start))
    # THEN the slice is exactly the tail of the wider range: pages are independent of each other
    offset = first - start
    assert np.array_equal(alone.meter_index, wider.meter_index[offset:])
    assert np.array_equal(alone.kw, wider.kw[offset:])
    assert np.array_equal(alone.arrival_s, wider.arrival_s[offset:])


_FLEET: Fleet | None = None


def _property_fleet() -> Fleet:
    global _FLEET
    if _FLEET is None:
        _FLEET = Fleet(FleetConfig(meter_count=700, seed=11, rates=EventRates(missing_fraction=0.02)))
    return _FLEET


@settings(max_examples=40, deadline=None)
@given(days=st.integers(min_value=0, max_value=900), hours=st.integers(min_value=1, max_value=30))
def test_values_are_physically_consistent(days: int, hours: int) -> None:
    # GIVEN any window of the fleet's history
    fleet = _property_fleet()
    start = fleet.config.start + timedelta(days=days)
    window = fleet.window(start, start + timedelta(hours=hours))
    batch = fleet.records(window, 0, window.record_count)
    # THEN power factor is in (0, 1], apparent power covers real power, current follows kVA / kV
    assert np.all((batch.pf > 0) & (batch.pf <= 1))
    assert np.all(batch.kva >= batch.kw)
    assert np.all(batch.kw >= 0)
    live = batch.vltg > 0
    assert np.allclose(batch.crrnt[live], batch.kva[live] / batch.vltg[live], atol=0.001)
    assert np.all(batch.crrnt[~live] == 0)
    assert np.all((batch.vltg[live] > 0.2) & (batch.vltg[live] < 0.25))  # kV, as in seed 000
    # AND late reads arrive after their time, never more than the configured maximum
    delay = batch.arrival_s - batch.time_s
    assert np.all((delay >= 0) & (delay <= fleet.config.rates.late_max_minutes * 60))


def test_records_are_ordered_by_time_then_device_id(fleet: Fleet) -> None:
    window = fleet.window(DAY, DAY + timedelta(hours=3))
    table = fleet.records(window, 0, window.record_count).to_arrow()
    keys = list(zip(table["time"].to_pylist(), table["device_id"].to_pylist(), strict=True))
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_record_count_is_exact_arithmetic_including_missing_reads(fleet: Fleet) -> None:
    # GIVEN a window of 12 slots of a fleet where 1 % of meters miss each slot
    window = fleet.window(DAY, DAY + timedelta(hours=3))
    # WHEN all records are generated
    batch = fleet.records(window, 0, 10**9)
    # THEN their number is slots x (meters - missing per slot), and each slot misses a different set
    assert len(batch) == window.record_count == 12 * (500 - 5)
    assert not np.array_equal(
        fleet.missing_positions(window.first_slot), fleet.missing_positions(window.first_slot + 1)
    )


def test_window_boundaries_are_half_open_and_round_up_to_slots(fleet: Fleet) -> None:
    assert fleet.window(DAY, DAY).record_count == 0
    assert fleet.window(DAY, DAY + timedelta(minutes=15)).slot_count == 1
    assert fleet.window(DAY + timedelta(seconds=1), DAY + timedelta(minutes=30)).slot_count == 1
    assert fleet.window(datetime(2000, 1, 1), fleet.config.start).record_count == 0


def test_load_has_daily_weekly_seasonal_and_temperature_shape(default_fleet: Fleet) -> None:
    # GIVEN residential meters over a week in winter and a week in spring
    fleet = default_fleet
    residential = np.flatnonzero(fleet.meter_class == MeterClass.RESIDENTIAL)[:400]
    commercial = np.flatnonzero(fleet.meter_class == MeterClass.COMMERCIAL)[:200]

    def mean_kw(meters: np.ndarray, start: datetime, hours: int) -> np.ndarray:
        first = fleet.slot_at_or_after(start)
        slots = np.arange(first, first + hours * 4)
        grid_m, grid_s = (a.ravel() for a in np.meshgrid(meters, slots, indexing="ij"))
        return fleet.readings(grid_m, grid_s).kw.reshape(len(meters), -1).mean(axis=0)

    monday_jan = datetime(2024, 1, 15)
    week = mean_kw(residential, monday_jan, 24 * 7)
    hourly = week[: 24 * 4].reshape(24, 4).mean(axis=1)
    # THEN evenings peak above the small hours (daily shape)
    assert hourly[18:21].mean() > 1.8 * hourly[2:5].mean()
    # AND commercial load drops at the weekend (weekly shape)
    office = mean_kw(commercial, monday_jan, 24 * 7).reshape(7, -1).mean(axis=1)
    assert office[:5].mean() > 1.5 * office[5:].mean()
    # AND winter demand exceeds spring demand (seasonal and temperature response)
    spring = mean_kw(residential, datetime(2024, 4, 29), 24 * 7)
    assert week.mean() > 1.1 * spring.mean()


def test_every_meter_class_is_present_with_its_own_scale(default_fleet: Fleet) -> None:
    shares = np.bincount(default_fleet.meter_class, minlength=4) / default_fleet.config.meter_count
    assert shares == pytest.approx([0.70, 0.10, 0.15, 0.05], abs=0.02)
    assert default_fleet.rated_kw[default_fleet.meter_class == MeterClass.INDUSTRIAL].min() >= 100


def test_ground_truth_matches_what_the_readings_show(fleet: Fleet) -> None:
    # GIVEN a month of a small fleet and its ground truth
    start, end = datetime(2023, 3, 1), datetime(2023, 3, 31)
    truth = ground_truth(fleet, start, end).to_pylist()
    kinds = {event["kind"] for event in truth}
    assert kinds == {"outage", "theft", "spike", "dip", "missing", "late"}
    window = fleet.window(start, end)
    # THEN outages show zero voltage and zero kW for the whole span
    outage = next(event for event in truth if event["kind"] == "outage" and event["start_time"] >= start)
    first = fleet.slot_at_or_after(outage["start_time"])
    last = fleet.slot_at_or_after(outage["end_time"])
    slots = np.arange(first, last)
    meters = np.full(len(slots), outage["meter_index"])
    during = fleet.readings(meters, slots)
    assert np.all(during.vltg == 0) and np.all(during.kw == 0)
    # AND late reads in the truth are exactly the records whose arrival is after their time
    batch = fleet.records(window, 0, window.record_count)
    assert sum(event["kind"] == "late" for event in truth) == int(np.sum(batch.arrival_s > batch.time_s))
    late_fraction = np.mean(batch.arrival_s > batch.time_s)
    assert late_fraction == pytest.approx(0.10, abs=0.01)
    # AND missing reads are the meters absent from the records
    missing = sum(event["kind"] == "missing" for event in truth)
    assert missing == window.slot_count * fleet.config.meter_count - window.record_count


def test_event_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="late_fraction"):
        EventRates(late_fraction=1.5)
    with pytest.raises(ValueError, match="interval_minutes"):
        FleetConfig(interval_minutes=7)
