"""GET /readings over HTTP, exactly as seed 000 documents it."""

from __future__ import annotations

import pytest

from meterflow.hes.domain.fleet import Fleet
from meterflow.localcloud.hes_client import HesClient

pytestmark = pytest.mark.e2e
SEED_START = "2023-02-27 16:00:00.000000"


def test_seed_documented_first_and_next_page(hes: HesClient, fleet: Fleet) -> None:
    # GIVEN the seed's request: start_date and page_size=100
    first = hes.readings(start_date=SEED_START, page_size=100)
    # THEN it answers 200 with the documented shape, offsets 1..100
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["filter_params"]["start_date"] == SEED_START
    assert body["filter_params"]["offset"] == 0
    assert body["results"]["last_offset"] == 100
    assert [record["offset"] for record in body["records"]] == list(range(1, 101))
    assert all(record["time"] == SEED_START for record in body["records"])
    # WHEN the next page passes offset=last_offset
    second = hes.readings(start_date=SEED_START, page_size=100, offset=body["results"]["last_offset"]).json()
    # THEN it continues at 101, in (time, device_id) order across the page boundary
    assert second["records"][0]["offset"] == 101
    ids = [record["device_id"] for record in body["records"] + second["records"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 200


def test_bounded_window_total_and_empty_page_past_the_end(hes: HesClient, fleet: Fleet) -> None:
    end = "2023-02-27 16:40:00.000000"
    body = hes.readings(start_date=SEED_START, end_date=end, page_size=1000, offset=29_900).json()
    total = 3 * fleet.records_per_slot
    assert body["results"]["records_total"] == total
    assert len(body["records"]) == total - 29_900
    past = hes.readings(start_date=SEED_START, end_date=end, offset=total)
    assert past.status_code == 200
    assert past.json()["records"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "start_date"),
        ({"start_date": "27/02/2023"}, "start_date"),
        ({"start_date": "2023-13-01 00:00:00"}, "start_date"),
        ({"start_date": SEED_START, "end_date": "2023-02-26 00:00:00"}, "end_date"),
        ({"start_date": SEED_START, "page_size": "0"}, "page_size"),
        ({"start_date": SEED_START, "page_size": "1001"}, "page_size"),
        ({"start_date": SEED_START, "offset": "-5"}, "offset"),
        ({"start_date": SEED_START, "offset": "abc"}, "offset"),
    ],
)
def test_bad_parameters_get_a_400_naming_the_field(
    hes: HesClient, params: dict[str, str], field: str
) -> None:
    response = hes.readings(**params)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["message"]
