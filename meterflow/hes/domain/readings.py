"""``GET /readings``: paginated HES readings, O(page size) at any offset."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meterflow.core.errors import InvalidInput
from meterflow.core.timeutil import format_hes_time, parse_hes_time
from meterflow.hes.domain.fleet import Fleet, SlotWindow

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1_000
# Far enough that "no end_date" means "everything up to now" for any real fleet.
_OPEN_END = datetime(9999, 1, 1)


@dataclass(frozen=True)
class ReadingsQuery:
    """A validated ``GET /readings`` request."""

    start_date: datetime
    end_date: datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    offset: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, str] | None) -> ReadingsQuery:
        params = params or {}
        unknown = sorted(set(params) - {"start_date", "end_date", "page_size", "offset"})
        if unknown:
            raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        start = parse_hes_time(params.get("start_date"), "start_date")
        end = parse_hes_time(params["end_date"], "end_date") if params.get("end_date") is not None else None
        if end is not None and end < start:
            raise InvalidInput("end_date must not be before start_date", field="end_date")
        page_size = _bounded_int(params.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        offset = _bounded_int(params.get("offset"), "offset", 0, 0, 10**15)
        return cls(start, end, page_size, offset)


def _bounded_int(raw: str | None, field: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    text = raw.strip()
    if not text.lstrip("-").isdigit():
        raise InvalidInput(f"{field} must be an integer, got {raw[:20]!r}", field=field)
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}, got {value}", field=field)
    return value


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
