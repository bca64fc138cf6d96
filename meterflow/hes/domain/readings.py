"""``GET /readings``: paginated HES readings, O(page size) at any offset."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import PlainValidator, ValidationInfo, field_validator, model_validator

from meterflow.core.contracts import Contract, HesTime
from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import format_hes_time
from meterflow.hes.domain.fleet import Fleet, SlotWindow

DEFAULT_PAGE_SIZE = 10
_INTEGER = re.compile(r"-?[0-9]{1,18}")
MAX_PAGE_SIZE = 1_000
# Far enough that "no end_date" means "everything up to now" for any real fleet.
_OPEN_END = datetime(9999, 1, 1)


def _bounded_int(low: int, high: int) -> PlainValidator:
    """A query parameter holding an integer in [low, high] (query parameters are text)."""

    def parse(raw: object, info: ValidationInfo) -> int:
        field = info.field_name or "parameter"
        text = raw.strip() if isinstance(raw, str) else ""
        # ASCII digits only, and few of them: str.isdigit() accepts "²", int() refuses it (and any
        # number over 4,300 digits), and "--5" would pass a lstrip("-")
        if not _INTEGER.fullmatch(text):
            raise InvalidInput(f"{field} must be an integer, got {str(raw)[:20]!r}", field=field)
        value = int(text)
        if not low <= value <= high:
            raise InvalidInput(f"{field} must be between {low} and {high}, got {value}", field=field)
        return value

    return PlainValidator(parse)


class ReadingsQuery(Contract):
    """The query parameters of ``GET /readings``."""

    start_date: HesTime
    end_date: HesTime | None = None
    page_size: Annotated[int, _bounded_int(1, MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    offset: Annotated[int, _bounded_int(0, 10**15)] = 0

    @model_validator(mode="before")
    @classmethod
    def _known_parameters(cls, params: object) -> object:
        params = params or {}
        if not isinstance(params, Mapping):
            raise InvalidInput("query parameters must be names and values", field="query")
        unknown = sorted(set(params) - set(cls.model_fields))
        if unknown:
            raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        # An absent start_date is refused like an empty one, with the format it must have.
        return {"start_date": None, **params}

    @field_validator("end_date")
    @classmethod
    def _not_before_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end < start:
            raise InvalidInput("end_date must not be before start_date", field="end_date")
        return end

    @classmethod
    def from_params(cls, params: Mapping[str, str] | None) -> ReadingsQuery:
        return cls.parse(params, "readings query")


def readings_window(fleet: Fleet, start: datetime, end: datetime | None, now: datetime) -> SlotWindow:
    """The slots a query covers: [start, end) and never past ``now`` (readings arrive in real time)."""
    return fleet.window(start, min(end or _OPEN_END, now))


def readings_page(fleet: Fleet, query: ReadingsQuery, clock: Callable[[], datetime]) -> dict[str, Any]:
    """The seed-000 response body for one page of readings."""
    window = readings_window(fleet, query.start_date, query.end_date, clock())
    batch = fleet.records(window, query.offset, query.page_size)
    table = batch.to_arrow()
    records: list[dict[str, Any]] = []
    columns = table.to_pydict()
    for row in range(len(batch)):
        records.append(
            {
                "offset": query.offset + row + 1,
                "time": format_hes_time(columns["time"][row]),
                "arrival_time": format_hes_time(columns["arrival_time"][row]),
                "device_id": columns["device_id"][row],
                "measure_name": "readings",
                "load": columns["load"][row],
                "crrnt": columns["crrnt"][row],
                "pf": columns["pf"][row],
                "kva": columns["kva"][row],
                "kw": columns["kw"][row],
                "vltg": columns["vltg"][row],
            }
        )
    return {
        "filter_params": {
            "start_date": format_hes_time(query.start_date),
            **({"end_date": format_hes_time(query.end_date)} if query.end_date else {}),
            "offset": query.offset,
            "page_size": query.page_size,
        },
        "results": {
            "records_total": window.record_count,
            "last_offset": query.offset + len(records),
            "last_date": records[-1]["time"] if records else None,
        },
        "records": records,
    }
