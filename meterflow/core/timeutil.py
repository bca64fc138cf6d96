"""Timestamps in the HES contract: naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

from meterflow.core.errors import InvalidInput

HES_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_ACCEPTED = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,6}))?)?$"
)


def parse_hes_time(value: object, field: str) -> datetime:
    """Parse a contract timestamp; raise :class:`InvalidInput` naming ``field`` when malformed.

    Accepts the seed's ``2023-02-27 16:00:00.000000`` and the shorter forms a person types
    (``2023-02-27 16:00:00``, ``2023-02-27``, ``T`` as separator). Times are UTC.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required, formatted YYYY-MM-DD HH:MM:SS.ffffff", field=field)
    match = _ACCEPTED.match(value.strip())
    if match is None:
        raise InvalidInput(
            f"{field} must be formatted YYYY-MM-DD HH:MM:SS.ffffff, got {value[:40]!r}", field=field
        )
    text = (
        match["date"] + " " + (match["time"] or "00:00:00") + "." + (match["fraction"] or "0").ljust(6, "0")
    )
    try:
        return datetime.strptime(text, HES_TIME_FORMAT)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a valid date: {exc}", field=field) from exc


def format_hes_time(moment: datetime) -> str:
    return moment.strftime(HES_TIME_FORMAT)


def to_epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch of a naive-UTC datetime (sub-second parts are floored)."""
    return int(moment.replace(tzinfo=UTC).timestamp() // 1)


def from_epoch_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


def utc_now() -> datetime:
    return datetime.now(tz=UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """HES times are naive UTC; an aware datetime is converted, a naive one taken as UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def epoch_seconds_to_datetime64(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]").astype("datetime64[us]")
