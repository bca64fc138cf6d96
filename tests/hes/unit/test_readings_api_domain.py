"""GET /readings in the domain: validation, pagination and the seed-000 response shape."""

from __future__ import annotations

from datetime import datetime

import pytest

from meterflow.core.errors import InvalidInput
from meterflow.hes.domain.fleet import Fleet
from meterflow.hes.domain.readings import ReadingsQuery, readings_page

NOW = datetime(2024, 1, 1)


def page(fleet: Fleet, **params: str) -> dict:
    return readings_page(fleet, ReadingsQuery.from_params(params), lambda: NOW)


def test_first_page_has_the_seed_shape(fleet: Fleet) -> None:
    body = page(fleet, start_date="2023-02-27 16:00:00.000000", page_size="100")
    assert set(body) == {"filter_params", "results", "records"}
    assert body["filter_params"]["start_date"] == "2023-02-27 16:00:00.000000"
    assert body["filter_params"]["offset"] == 0
    assert body["results"]["last_offset"] == 100
    assert body["results"]["last_date"] == "2023-02-27 16:00:00.000000"
    first = body["records"][0]
    assert list(first) == [
        "offset",
        "time",
        "arrival_time",
        "device_id",
        "measure_name",
        "load",
        "crrnt",
        "pf",
        "kva",
        "kw",
        "vltg",
    ]
    assert first["offset"] == 1 and first["measure_name"] == "readings"
    assert isinstance(first["load"], int)


def test_next_page_continues_where_the_last_offset_ended(fleet: Fleet) -> None:
    # GIVEN two pages of 300 and one page of 600 from the same start
    one = page(fleet, start_date="2023-02-27 16:00:00", page_size="300")
    two = page(
        fleet, start_date="2023-02-27 16:00:00", page_size="300", offset=str(one["results"]["last_offset"])
    )
    both = page(fleet, start_date="2023-02-27 16:00:00", page_size="600")
    # THEN the two pages concatenate to the big one, offsets included
    assert one["records"] + two["records"] == both["records"]
    assert two["records"][0]["offset"] == 301


def test_a_page_past_the_end_is_empty_not_an_error(fleet: Fleet) -> None:
    body = page(fleet, start_date="2023-02-27 16:00:00", end_date="2023-02-27 16:30:00", offset="5000")
    assert body["records"] == []
    assert body["results"]["records_total"] == 2 * fleet.records_per_slot
    assert body["results"]["last_offset"] == 5000
    assert body["results"]["last_date"] is None


def test_readings_never_come_from_the_future(fleet: Fleet) -> None:
    body = page(fleet, start_date="2023-12-31 23:30:00")
    assert body["results"]["records_total"] == 2 * fleet.records_per_slot


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "start_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2023-02-30 00:00:00"}, "start_date"),
        ({"start_date": "2023-02-27 16:00:00'; DROP TABLE readings"}, "start_date"),
        ({"start_date": "2023-02-27", "end_date": "2023-02-26"}, "end_date"),
        ({"start_date": "2023-02-27", "page_size": "0"}, "page_size"),
        ({"start_date": "2023-02-27", "page_size": "1001"}, "page_size"),
        ({"start_date": "2023-02-27", "page_size": "ten"}, "page_size"),
        ({"start_date": "2023-02-27", "offset": "-1"}, "offset"),
        ({"start_date": "2023-02-27", "offset": "1e3"}, "offset"),
        ({"start_date": "2023-02-27", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ReadingsQuery.from_params(params)
    assert raised.value.field == field
    assert raised.value.to_dict()["field"] == field
