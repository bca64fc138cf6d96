"""Observed hourly temperature from the Open-Meteo historical weather API (no key required).

Real meter data (the London dataset) needs real weather; the simulator's territory uses
:class:`meterflow.lake.domain.weather_source.SimulatedWeather` instead. Both satisfy the same
:class:`~meterflow.lake.ports.WeatherProvider` protocol, so the weather dataflow does
not know which one it drives.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from typing import Any, Final

import pyarrow as pa
import requests

from meterflow.core.errors import InvalidInput
from meterflow.lake.domain.weather_source import validate_window, weather_table
from meterflow.lake.ports import WeatherUnavailable

ARCHIVE_URL: Final = "https://archive-api.open-meteo.com/v1/archive"
_VARIABLE = "temperature_2m"


class OpenMeteoWeather:
    """A :class:`WeatherProvider` over Open-Meteo's archive endpoint for one location.

    Hours Open-Meteo has no value for (``null``: typically the last few days, before its reanalysis
    catches up) are left out rather than invented, so a later run can fill them in.
    """

    source = "open-meteo"

    def __init__(
        self,
        session: requests.Session,
        *,
        latitude: float,
        longitude: float,
        base_url: str = ARCHIVE_URL,
        timeout_s: float = 30.0,
    ) -> None:
        if not -90.0 <= latitude <= 90.0:
            raise InvalidInput(f"latitude must be in [-90, 90], got {latitude}", field="latitude")
        if not -180.0 <= longitude <= 180.0:
            raise InvalidInput(f"longitude must be in [-180, 180], got {longitude}", field="longitude")
        self._session = session
        self._base_url = base_url
        self._timeout_s = timeout_s
        self.latitude = latitude
        self.longitude = longitude

    def hourly(self, start: datetime, end: datetime) -> pa.Table:
        validate_window(start, end)
        params: dict[str, str | float] = {
            "latitude": self.latitude,
            "longitude": self.longitude,
            # Open-Meteo's dates are inclusive and whole days: ask for every day the window touches.
            "start_date": start.date().isoformat(),
            "end_date": (end - timedelta(hours=1)).date().isoformat(),
            "hourly": _VARIABLE,
            "timezone": "UTC",
        }
        try:
            response = self._session.get(self._base_url, params=params, timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise WeatherUnavailable(f"Open-Meteo request failed: {exc}") from exc
        if response.status_code != 200:
            raise WeatherUnavailable(
                f"Open-Meteo answered HTTP {response.status_code}: {_error_reason(response)}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise WeatherUnavailable(f"Open-Meteo answered with malformed JSON: {exc}") from exc

        observations = [
            (moment, value)
            for moment, value in _hourly_series(body)
            if start <= moment < end and value is not None
        ]
        times = pa.array([moment for moment, _ in observations], type=pa.timestamp("us"))
        values = pa.array([value for _, value in observations], type=pa.float64())
        return weather_table(times, values, self.source)


def _error_reason(response: requests.Response) -> str:
    """Open-Meteo explains a rejected request as ``{"error": true, "reason": "..."}``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(body, dict) and isinstance(body.get("reason"), str):
        return str(body["reason"])
    return response.text[:200]


def _hourly_series(body: Any) -> list[tuple[datetime, float | None]]:
    """(time, temperature) pairs of a response, in time order; raise on anything malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("hourly"), dict):
        raise WeatherUnavailable("Open-Meteo response has no 'hourly' object")
    offset = body.get("utc_offset_seconds", 0)
    if offset != 0:
        raise WeatherUnavailable(f"Open-Meteo answered in UTC{offset:+} s, not UTC")
    hourly = body["hourly"]
    times, values = hourly.get("time"), hourly.get(_VARIABLE)
    if not isinstance(times, list) or not isinstance(values, list):
        raise WeatherUnavailable(f"Open-Meteo response lacks hourly 'time' and '{_VARIABLE}' lists")
    if len(times) != len(values):
        raise WeatherUnavailable(f"Open-Meteo answered {len(times)} times but {len(values)} values")

    series: list[tuple[datetime, float | None]] = []
    for text, value in zip(times, values, strict=True):
        try:
            moment = datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is not None:
            raise WeatherUnavailable(f"Open-Meteo answered a malformed time {text!r}")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise WeatherUnavailable(f"Open-Meteo answered a malformed {_VARIABLE} {value!r} at {text}")
        series.append((moment, None if value is None else float(value)))
    series.sort(key=lambda pair: pair[0])
    if any(earlier[0] == later[0] for earlier, later in itertools.pairwise(series)):
        raise WeatherUnavailable("Open-Meteo answered the same hour twice")
    return series
