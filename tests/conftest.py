from __future__ import annotations

import pytest

from meterflow.hes.domain.fleet import EventRates, Fleet, FleetConfig


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    """A small fleet with every event switched on, fast enough for property tests."""
    return Fleet(FleetConfig(meter_count=500, seed=7, rates=EventRates(missing_fraction=0.01)))


@pytest.fixture(scope="session")
def default_fleet() -> Fleet:
    return Fleet(FleetConfig())
