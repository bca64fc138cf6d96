"""Deterministic outdoor temperature for the simulated service territory.

The HES load model responds to this temperature, and the lake's weather dataflow publishes the same
series, so a forecasting model trained on the lake sees a real (and recoverable) temperature effect.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from meterflow.core.hashing import uniform

_SECONDS_PER_DAY = 86_400
_WEATHER_STREAM = 901
# A temperate, northern-hemisphere climate: coldest mid-January, warmest mid-July.
ANNUAL_MEAN_C = 11.0
ANNUAL_AMPLITUDE_C = 9.0
DIURNAL_AMPLITUDE_C = 4.0
DAILY_ANOMALY_C = 6.0


def temperature_c(epoch_seconds: npt.ArrayLike, seed: int) -> npt.NDArray[np.float64]:
    """Air temperature in degrees Celsius at each epoch second (UTC, vectorised)."""
    seconds = np.asarray(epoch_seconds, dtype=np.int64)
    days = seconds / _SECONDS_PER_DAY
    day_of_year = np.mod(days, 365.2425)
    annual = ANNUAL_MEAN_C - ANNUAL_AMPLITUDE_C * np.cos(2 * np.pi * (day_of_year - 15.0) / 365.2425)
    hour = np.mod(seconds, _SECONDS_PER_DAY) / 3600.0
    diurnal = DIURNAL_AMPLITUDE_C * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    # Weather systems: one random anomaly per day, smoothly interpolated between day midpoints.
    day_index = np.floor(days - 0.5).astype(np.int64)
    weight = (days - 0.5) - day_index
    anomaly_today = uniform(seed, _WEATHER_STREAM, day_index) - 0.5
    anomaly_tomorrow = uniform(seed, _WEATHER_STREAM, day_index + 1) - 0.5
    smooth = 0.5 - 0.5 * np.cos(np.pi * weight)
    anomaly = DAILY_ANOMALY_C * ((1 - smooth) * anomaly_today + smooth * anomaly_tomorrow)
    return np.asarray(annual + diurnal + anomaly, dtype=np.float64)
