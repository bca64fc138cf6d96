"""Exports by arrival time: the reads the head-end received in a window, whatever their reading time."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from meterflow.core.errors import ExportIntegrityError, InvalidInput
from meterflow.core.timeutil import format_hes_time, from_epoch_seconds, parse_hes_time
from meterflow.hes.domain import services
from meterflow.hes.domain.export import (
    ChunkContext,
    ChunkJob,
    ExportPlan,
    ExportSubmission,
    ExportWindow,
    FileRequest,
    PlanJob,
    WindowBy,
    chunk_records,
    plan_export,
)
from meterflow.hes.domain.fleet import EventRates, Fleet, FleetConfig, ReadingBatch
from meterflow.hes.ports import StoredObject

REQUEST_ID = "0b5e8a4e-3f4c-4a59-9d1e-2f7f0c6a9b11"
# Long after every window below: all of their reads have arrived.
LONG_AFTER = datetime(2024, 1, 1, 12, 0, 0, 713000)

Read = tuple[int, int]  # (meter_index, slot)
PlanByArrival = Callable[..., ExportPlan]


@pytest.fixture(scope="module")
def small_fleet() -> Fleet:
    """50 meters, two of them missing every slot, many late reads: every edge case in a small set."""
    return Fleet(
        FleetConfig(meter_count=50, seed=11, rates=EventRates(missing_fraction=0.04, late_fraction=0.3))
    )


@pytest.fixture
def plan_by_arrival(small_fleet: Fleet) -> PlanByArrival:
    def plan(
        start: str, end: str, now: datetime = LONG_AFTER, chunk_records: int = 40, max_chunks: int = 1_000
    ) -> ExportPlan:
        job = PlanJob.from_payload(
            {
                "request_id": REQUEST_ID,
                "start_date": start,
                "end_date": end,
                "window_by": "arrival_time",
                "execution_name": REQUEST_ID,
                "execution_start_time": now.isoformat() + "Z",
            }
        )
        return plan_export(small_fleet, job, chunk_records, max_chunks)

    return plan


def chunk_batches(fleet: Fleet, plan: ExportPlan) -> list[ReadingBatch]:
    """What the chunk workers compute for the plan, chunk by chunk."""
    return [chunk_records(fleet, ChunkJob(plan.context, chunk)) for chunk in plan.chunks]


def reads_of(batches: Sequence[ReadingBatch]) -> list[Read]:
    return [
        (int(meter), int(slot))
        for batch in batches
        for meter, slot in zip(batch.meter_index, batch.slot, strict=True)
    ]


def epoch(moment: str | datetime) -> float:
    parsed = parse_hes_time(moment, "moment") if isinstance(moment, str) else moment
    return parsed.replace(tzinfo=UTC).timestamp()


def brute_force_reads(fleet: Fleet, start: str, end: str, now: datetime = LONG_AFTER) -> set[Read]:
    """Every read taken up to the maximum delay before ``start``, kept if it arrived in the window by now."""
    earliest = parse_hes_time(start, "start") - timedelta(minutes=fleet.config.rates.late_max_minutes)
    taken = fleet.window(earliest, parse_hes_time(end, "end"))
    batch = fleet.records(taken, 0, taken.record_count)
    arrived = (
        (batch.arrival_s >= epoch(start)) & (batch.arrival_s < epoch(end)) & (batch.arrival_s <= epoch(now))
    )
    return set(zip(batch.meter_index[arrived].tolist(), batch.slot[arrived].tolist(), strict=True))


WINDOWS = [
    pytest.param("2023-03-02 10:00:00", "2023-03-02 11:00:00", LONG_AFTER, id="one-hour"),
    pytest.param(
        "2023-03-02 10:00:00.250000", "2023-03-02 10:44:59.999999", LONG_AFTER, id="sub-second-bounds"
    ),
    pytest.param("2023-01-01 00:00:00", "2023-01-01 02:00:00", LONG_AFTER, id="at-the-fleet-start"),
    pytest.param(
        "2023-03-02 10:00:00", "2023-03-02 12:00:00", datetime(2023, 3, 2, 10, 50, 0, 500000), id="now-inside"
    ),
    pytest.param(
        "2023-03-02 10:00:00", "2023-03-02 12:00:00", datetime(2023, 3, 2, 9, 0), id="now-before-start"
    ),
    pytest.param("2023-03-01 00:00:00", "2023-03-04 00:00:00", LONG_AFTER, id="three-days"),
]


@pytest.mark.parametrize(("start", "end", "now"), WINDOWS)
def test_every_planned_read_arrived_in_the_window_and_not_after_now(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival, start: str, end: str, now: datetime
) -> None:
    # GIVEN an export by arrival time, planned at ``now``
    plan = plan_by_arrival(start, end, now)
    # WHEN its chunks are computed
    batches = chunk_batches(small_fleet, plan)
    arrival_s = np.concatenate([batch.arrival_s for batch in batches] or [np.empty(0, dtype=np.int64)])
    # THEN every read arrived in [start, end) and not after now, whatever its reading time
    assert np.all((arrival_s >= epoch(start)) & (arrival_s < epoch(end)) & (arrival_s <= epoch(now)))
    # AND the lines are in (time, device_id) order, as in an export by time
    keys = [
        (int(time_s), small_fleet.device_id_list[meter])
        for batch in batches
        for time_s, meter in zip(batch.time_s, batch.meter_index, strict=True)
    ]
    assert keys == sorted(keys)


@pytest.mark.parametrize(("start", "end", "now"), WINDOWS)
def test_the_plan_counts_exactly_the_reads_a_brute_force_finds(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival, start: str, end: str, now: datetime
) -> None:
    # GIVEN the reads that arrived in the window, found by computing every candidate reading
    expected = brute_force_reads(small_fleet, start, end, now)
    # WHEN the export is planned and its chunks computed
    plan = plan_by_arrival(start, end, now)
    reads = reads_of(chunk_batches(small_fleet, plan))
    # THEN the file holds exactly those reads, once each, and the plan counted them exactly
    assert len(reads) == len(set(reads)) == plan.context.record_count
    assert set(reads) == expected


def test_window_bounds_and_now_are_exact_to_the_microsecond(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival
) -> None:
    # GIVEN a late read and the second it arrived
    batch = small_fleet.records(
        small_fleet.window(datetime(2023, 3, 2, 10), datetime(2023, 3, 2, 11)), 0, 500
    )
    late = int(np.flatnonzero(batch.arrival_s > batch.time_s)[0])
    read = (int(batch.meter_index[late]), int(batch.slot[late]))
    arrived = from_epoch_seconds(int(batch.arrival_s[late]))
    tick, hour = timedelta(microseconds=1), timedelta(hours=1)
    cases = [
        (arrived, arrived + tick, LONG_AFTER, True),  # the start is inclusive
        (arrived + tick, arrived + hour, LONG_AFTER, False),
        (arrived - hour, arrived, LONG_AFTER, False),  # the end is exclusive
        (arrived - hour, arrived + tick, LONG_AFTER, True),
        (arrived - hour, arrived + hour, arrived, True),  # a read that arrived at "now" exists
        (arrived - hour, arrived + hour, arrived - tick, False),  # one that arrives later does not, yet
    ]
    for start, end, now, included in cases:
        # WHEN a window around that arrival is exported at ``now``
        plan = plan_by_arrival(format_hes_time(start), format_hes_time(end), now)
        # THEN the read is in the file exactly when its arrival is in [start, end) and not after now
        assert (read in reads_of(chunk_batches(small_fleet, plan))) is included, (start, end, now)


def test_reads_exactly_at_the_maximum_delay_are_counted_exactly() -> None:
    # GIVEN a fleet where every late read arrives exactly one slot (the maximum delay) after its time
    fleet = Fleet(
        FleetConfig(
            meter_count=30, interval_minutes=1, rates=EventRates(late_fraction=0.5, late_max_minutes=1)
        )
    )
    start, end = "2023-03-02 10:00:00", "2023-03-02 10:30:00"
    job = PlanJob(REQUEST_ID, parse_hes_time(start, "s"), parse_hes_time(end, "e"), REQUEST_ID, LONG_AFTER)
    # WHEN a window by arrival time is planned and computed
    plan = plan_export(fleet, dataclasses.replace(job, window_by=WindowBy.ARRIVAL_TIME), 100, 1_000)
    reads = reads_of(chunk_batches(fleet, plan))
    # THEN the slots on both edges, half of whose reads arrive outside the window, are counted exactly
    assert set(reads) == brute_force_reads(fleet, start, end)
    assert len(reads) == plan.context.record_count


def test_late_reads_of_earlier_hours_come_with_the_window_they_arrived_in(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival
) -> None:
    # GIVEN a window by arrival time
    start = "2023-03-02 10:00:00"
    # WHEN it is exported
    batches = chunk_batches(small_fleet, plan_by_arrival(start, "2023-03-02 11:00:00"))
    time_s = np.concatenate([batch.time_s for batch in batches])
    # THEN it holds reads taken before the window (late ones), never more than the maximum delay before
    assert np.any(time_s < epoch(start))
    assert np.all(time_s >= epoch(start) - small_fleet.max_arrival_delay_s)


@pytest.mark.parametrize(
    "bounds",
    [
        pytest.param(["2023-03-02 10:00:00", "2023-03-02 11:00:00", "2023-03-02 12:00:00"], id="hourly"),
        pytest.param(["2023-03-02 10:00:00", "2023-03-02 10:07:30.5", "2023-03-03 10:00:00"], id="uneven"),
        pytest.param(
            ["2023-03-02 00:00:00", "2023-03-02 06:00:00", "2023-03-02 12:00:00", "2023-03-02 18:00:00"],
            id="three-windows",
        ),
    ],
)
def test_consecutive_arrival_windows_partition_the_reads(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival, bounds: list[str]
) -> None:
    # GIVEN consecutive windows by arrival time, as an incremental pull requests them
    windows = list(itertools.pairwise(bounds))
    # WHEN each is exported
    files = [set(reads_of(chunk_batches(small_fleet, plan_by_arrival(start, end)))) for start, end in windows]
    # THEN no read is in two of them
    assert all(not (first & second) for first, second in itertools.combinations(files, 2))
    # AND together they hold exactly the reads that arrived in the whole span
    assert set().union(*files) == brute_force_reads(small_fleet, bounds[0], bounds[-1])


def test_chunks_tile_the_candidate_slots_and_their_counts_sum_to_the_record_count(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival
) -> None:
    # GIVEN a 20-day window by arrival time, cut into chunks of ~5,000 records but at most 7 chunks
    plan = plan_by_arrival("2023-03-01 00:00:00", "2023-03-21 00:00:00", chunk_records=5_000, max_chunks=7)
    chunks = plan.chunks
    # THEN the chunk cap holds, and the chunks are consecutive blocks of slots over all the candidates
    assert 1 < len(chunks) <= 7
    assert chunks[0].first_slot == plan.context.first_slot and chunks[-1].end_slot == plan.context.end_slot
    assert all(a.end_slot == b.first_slot for a, b in itertools.pairwise(chunks))
    # AND their planned counts are positioned one after the other and sum to the record count
    assert all(a.first_index + a.count == b.first_index for a, b in itertools.pairwise(chunks))
    assert sum(chunk.count for chunk in chunks) == plan.context.record_count
    # AND each chunk worker computes exactly its planned count
    assert [len(batch) for batch in chunk_batches(small_fleet, plan)] == [chunk.count for chunk in chunks]


def test_arrival_seconds_are_the_arrival_times_of_the_readings(small_fleet: Fleet) -> None:
    # GIVEN (meter, slot) pairs all over the fleet's first year
    rng = np.random.default_rng(5)
    meters = rng.integers(0, small_fleet.config.meter_count, 5_000)
    slots = rng.integers(0, 365 * small_fleet.slots_per_day, 5_000)
    # WHEN their arrival is computed alone
    arrival_s = small_fleet.arrival_seconds(meters, slots)
    # THEN it is the arrival_time of the full readings
    assert np.array_equal(arrival_s, small_fleet.readings(meters, slots).arrival_s)


class RecordingStore:
    """An object store that keeps what it is given in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, int]] = {}

    def put(self, key: str, data: bytes, record_count: int) -> None:
        self.objects[key] = (data, record_count)

    def head(self, key: str) -> StoredObject | None:
        if key not in self.objects:
            return None
        data, record_count = self.objects[key]
        return StoredObject(key, len(data), record_count)

    def compose(
        self, target_key: str, part_groups: Sequence[Sequence[StoredObject]], record_count: int
    ) -> int:
        raise AssertionError("a chunk job never composes the file")

    def delete_prefix(self, prefix: str) -> None:
        raise AssertionError("a chunk job never deletes staging")


def test_a_chunk_whose_reads_differ_from_the_plan_fails_and_stores_nothing(
    small_fleet: Fleet, plan_by_arrival: PlanByArrival
) -> None:
    # GIVEN a chunk of an export by arrival time whose planned count is off by one
    plan = plan_by_arrival("2023-03-02 10:00:00", "2023-03-02 11:00:00")
    chunk = dataclasses.replace(plan.chunks[0], count=plan.chunks[0].count + 1)
    store = RecordingStore()
    payload = {"plan": plan.to_state()["chunk_context"], "chunk": chunk.to_state()}
    # WHEN a worker computes it
    with pytest.raises(ExportIntegrityError, match="planned"):
        services.export_chunk(payload, small_fleet, store)
    # THEN the export fails rather than ship a file that does not add up
    assert store.objects == {}


@pytest.mark.parametrize(
    "window_by", ["arrival", "TIME", "", " time", None, 1, True, ["time"], {"by": "time"}]
)
def test_bad_window_by_values_name_the_field(window_by: object) -> None:
    # GIVEN a body whose window_by is not one of the two modes
    body = {"start_date": "2023-02-27", "end_date": "2023-02-28", "window_by": window_by}
    # WHEN it is validated THEN it is refused, naming window_by
    with pytest.raises(InvalidInput) as raised:
        ExportWindow.from_body(body)
    assert raised.value.field == "window_by"
    assert raised.value.to_dict().keys() == {"error", "message", "field"}


def test_other_fields_are_still_unknown_next_to_window_by() -> None:
    body = {
        "start_date": "2023-02-27",
        "end_date": "2023-02-28",
        "window_by": "arrival_time",
        "format": "xml",
    }
    with pytest.raises(InvalidInput) as raised:
        ExportWindow.from_body(body)
    assert raised.value.field == "format"


@pytest.mark.parametrize(
    ("body", "window_by"),
    [
        ({"start_date": "2023-02-27", "end_date": "2023-02-28"}, WindowBy.TIME),
        ({"start_date": "2023-02-27", "end_date": "2023-02-28", "window_by": "time"}, WindowBy.TIME),
        (
            {"start_date": "2023-02-27", "end_date": "2023-02-28", "window_by": "arrival_time"},
            WindowBy.ARRIVAL_TIME,
        ),
    ],
)
def test_window_by_travels_from_the_request_to_every_chunk(body: dict[str, str], window_by: WindowBy) -> None:
    # GIVEN an accepted request
    request = FileRequest.new(ExportWindow.from_body(body), datetime(2024, 1, 1), REQUEST_ID)
    # THEN GET /readings/file reports its mode
    assert request.status_body()["window_by"] == window_by.value
    # WHEN its queue message becomes the workflow input, then the plan job (as the state machine builds it)
    submission = ExportSubmission.from_message(request.queue_message())
    plan_payload = {
        **json.loads(submission.workflow_input()),
        "execution_name": REQUEST_ID,
        "execution_start_time": "2024-01-01T12:00:00.713Z",
    }
    state = plan_export(
        Fleet(FleetConfig(meter_count=20)), PlanJob.from_payload(plan_payload), 500, 10
    ).to_state()
    # THEN the mode reaches the plan's chunk context, which every chunk and the finaliser read
    chunk_job = ChunkJob.from_payload(
        json.loads(json.dumps({"plan": state["chunk_context"], "chunk": state["chunks"][0]}))
    )
    assert chunk_job.context.window_by is window_by


def test_messages_and_payloads_without_window_by_select_by_time(fleet: Fleet) -> None:
    # GIVEN a request message, a plan job and a chunk context written before exports by arrival existed
    message = json.dumps({"request_id": REQUEST_ID, "start_date": "2023-02-27", "end_date": "2023-02-28"})
    plan_payload = {
        "request_id": REQUEST_ID,
        "start_date": "2023-02-27 16:00:00",
        "end_date": "2023-02-27 17:00:00",
        "execution_name": REQUEST_ID,
        "execution_start_time": "2024-01-01T12:00:00.713Z",
    }
    state = plan_export(fleet, PlanJob.from_payload(plan_payload), 700, 1_000).to_state()
    old_context = {
        name: value
        for name, value in state["chunk_context"].items()
        if name not in {"window_by", "first_arrival_s", "end_arrival_s"}
    }
    # WHEN each is read THEN it selects by time
    assert ExportSubmission.from_message(message).window_by is WindowBy.TIME
    assert PlanJob.from_payload(plan_payload).window_by is WindowBy.TIME
    assert ChunkContext.from_state(old_context).window_by is WindowBy.TIME
    # AND a plan by time keeps its chunk items as they were
    assert all(chunk.keys() == {"index", "first_index", "count"} for chunk in state["chunks"])
