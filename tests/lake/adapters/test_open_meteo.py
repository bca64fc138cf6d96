"""The Open-Meteo weather adapter against a local HTTP server serving canned answers (no internet)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from meterflow.core.errors import InvalidInput
from meterflow.lake.adapters.open_meteo import OpenMeteoWeather
from meterflow.lake.domain.schema import WEATHER_SCHEMA
from meterflow.lake.ports import WeatherProvider, WeatherUnavailable
from meterflow.localcloud.net import free_port

LATITUDE, LONGITUDE = 51.5074, -0.1278
DAY = datetime(2023, 1, 1)


@dataclass
class CannedServer:
    """Answers every GET with the next canned (status, body) and records what was asked."""

    url: str
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def reply_json(self, body: Any, status: int = 200) -> None:
        self.answers.append((status, json.dumps(body).encode()))

    def reply_raw(self, body: bytes, status: int = 200) -> None:
        self.answers.append((status, body))


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            canned.paths.append(parts.path)
            canned.queries.append(parse_qs(parts.query))
            status, body = canned.answers.pop(0) if canned.answers else (404, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    canned.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/archive"
    # a short poll interval: shutdown() waits up to one interval, and every test stops a server
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield canned
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture
def weather(server: CannedServer, session: requests.Session) -> WeatherProvider:
    return OpenMeteoWeather(session, latitude=LATITUDE, longitude=LONGITUDE, base_url=server.url, timeout_s=5)


def archive_answer(
    first: datetime, hours: int, temperatures: list[float | None] | None = None
) -> dict[str, Any]:
    """An Open-Meteo archive response body for ``hours`` hours from ``first``."""
    values: list[float | None] = temperatures or [round(0.5 * i - 3.0, 1) for i in range(hours)]
    return {
        "latitude": 51.5,
        "longitude": -0.12,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "hourly_units": {"time": "iso8601", "temperature_2m": "°C"},
        "hourly": {
            "time": [(first + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M") for i in range(hours)],
            "temperature_2m": values,
        },
    }


def test_hourly_asks_for_the_days_of_the_window_and_keeps_only_its_hours(
    server: CannedServer, weather: WeatherProvider
) -> None:
    # GIVEN Open-Meteo answers whole days (1 and 2 January, 48 hours)
    server.reply_json(archive_answer(DAY, 48))
    # WHEN a window from 1 January 20:00 to 2 January 05:00 is asked for
    table = weather.hourly(DAY + timedelta(hours=20), DAY + timedelta(hours=29))
    # THEN the request names the location, both days, the variable and UTC
    assert server.paths == ["/v1/archive"]
    assert server.queries[0] == {
        "latitude": [str(LATITUDE)],
        "longitude": [str(LONGITUDE)],
        "start_date": ["2023-01-01"],
        "end_date": ["2023-01-02"],
        "hourly": ["temperature_2m"],
        "timezone": ["UTC"],
    }
    # AND only the nine hours of the window come back, with their values, as the weather schema
    assert table.schema.equals(WEATHER_SCHEMA)
    assert table.column("observation_time").to_pylist() == [DAY + timedelta(hours=h) for h in range(20, 29)]
    assert table.column("temperature_c").to_pylist() == [round(0.5 * h - 3.0, 1) for h in range(20, 29)]
    assert set(table.column("source").to_pylist()) == {"open-meteo"}


def test_a_window_ending_at_midnight_does_not_ask_for_the_next_day(
    server: CannedServer, weather: WeatherProvider
) -> None:
    server.reply_json(archive_answer(DAY, 24))
    table = weather.hourly(DAY, DAY + timedelta(days=1))
    assert server.queries[0]["end_date"] == ["2023-01-01"]
    assert table.num_rows == 24


def test_hours_without_a_value_are_left_out(server: CannedServer, weather: WeatherProvider) -> None:
    # GIVEN Open-Meteo has no value yet for the last two hours
    server.reply_json(archive_answer(DAY, 4, [1.0, 2.5, None, None]))
    # THEN they are absent rather than invented
    table = weather.hourly(DAY, DAY + timedelta(hours=4))
    assert table.column("temperature_c").to_pylist() == [1.0, 2.5]


def test_integer_temperatures_are_accepted_and_out_of_order_hours_sorted(
    server: CannedServer, weather: WeatherProvider
) -> None:
    body = archive_answer(DAY, 2, [3, 4])
    body["hourly"]["time"].reverse()
    server.reply_json(body)
    table = weather.hourly(DAY, DAY + timedelta(hours=2))
    assert table.column("observation_time").to_pylist() == [DAY, DAY + timedelta(hours=1)]
    assert table.column("temperature_c").to_pylist() == [4.0, 3.0]


def test_an_http_error_raises_with_open_meteos_reason(server: CannedServer, weather: WeatherProvider) -> None:
    server.reply_json({"error": True, "reason": "Parameter 'start_date' is out of allowed range"}, status=400)
    with pytest.raises(WeatherUnavailable, match=r"HTTP 400: Parameter 'start_date' is out of allowed range"):
        weather.hourly(DAY, DAY + timedelta(hours=1))


def test_a_server_error_with_a_non_json_body_raises(server: CannedServer, weather: WeatherProvider) -> None:
    server.reply_raw(b"<html>bad gateway</html>", status=502)
    with pytest.raises(WeatherUnavailable, match=r"HTTP 502: <html>bad gateway</html>"):
        weather.hourly(DAY, DAY + timedelta(hours=1))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json at all", "malformed JSON"),
        (b"[]", "no 'hourly' object"),
        (json.dumps({"hourly": {"time": ["2023-01-01T00:00"]}}).encode(), "lacks hourly"),
        (
            json.dumps({"hourly": {"time": ["2023-01-01T00:00"], "temperature_2m": [1.0, 2.0]}}).encode(),
            "1 times but 2 values",
        ),
        (
            json.dumps({"hourly": {"time": ["yesterday"], "temperature_2m": [1.0]}}).encode(),
            "malformed time",
        ),
        (
            json.dumps({"hourly": {"time": ["2023-01-01T00:00"], "temperature_2m": ["warm"]}}).encode(),
            "malformed temperature_2m",
        ),
        (
            json.dumps({"hourly": {"time": ["2023-01-01T00:00"], "temperature_2m": [True]}}).encode(),
            "malformed temperature_2m",
        ),
        (
            json.dumps(
                {"hourly": {"time": ["2023-01-01T00:00", "2023-01-01T00:00"], "temperature_2m": [1, 2]}}
            ).encode(),
            "same hour twice",
        ),
        (
            json.dumps(
                {"utc_offset_seconds": 3600, "hourly": {"time": ["2023-01-01T00:00"], "temperature_2m": [1]}}
            ).encode(),
            "not UTC",
        ),
    ],
)
def test_a_malformed_answer_raises_a_clear_error(
    server: CannedServer, weather: WeatherProvider, body: bytes, message: str
) -> None:
    server.reply_raw(body)
    with pytest.raises(WeatherUnavailable, match=message):
        weather.hourly(DAY, DAY + timedelta(hours=1))


def test_an_unreachable_server_raises(session: requests.Session) -> None:
    # GIVEN a port nothing listens on
    port = free_port()
    weather = OpenMeteoWeather(
        session, latitude=LATITUDE, longitude=LONGITUDE, base_url=f"http://127.0.0.1:{port}/v1/archive"
    )
    with pytest.raises(WeatherUnavailable, match="request failed"):
        weather.hourly(DAY, DAY + timedelta(hours=1))


def test_a_malformed_window_is_rejected_before_any_request(
    server: CannedServer, weather: WeatherProvider
) -> None:
    with pytest.raises(InvalidInput) as raised:
        weather.hourly(DAY + timedelta(minutes=30), DAY + timedelta(hours=2))
    assert raised.value.field == "start"
    assert server.queries == []


@pytest.mark.parametrize(
    ("latitude", "longitude", "field"), [(91.0, 0.0, "latitude"), (0.0, -181.0, "longitude")]
)
def test_an_impossible_location_is_rejected(
    session: requests.Session, latitude: float, longitude: float, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        OpenMeteoWeather(session, latitude=latitude, longitude=longitude)
    assert raised.value.field == field
