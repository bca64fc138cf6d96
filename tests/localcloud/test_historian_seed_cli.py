"""``meterflow historian seed`` fills a site's historian with the simulator's readings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from meterflow.hes.domain.fleet import Fleet, FleetConfig
from meterflow.localcloud.cli import main
from onprem_worker.historians import historian_from_url


def test_seed_command_fills_the_historian_with_the_fleets_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an empty SQLite historian
    url = f"sqlite:///{tmp_path / 'historian.sqlite'}"
    # WHEN an hour of a 50-meter fleet is seeded from the command line
    code = main(
        [
            "historian",
            "seed",
            "--url",
            url,
            "--start",
            "2023-01-02 00:00:00",
            "--end",
            "2023-01-02 01:00:00",
            "--meters",
            "50",
        ]
    )
    # THEN the historian holds exactly the fleet's records of that hour, and the command says so
    expected = Fleet(FleetConfig(meter_count=50)).window(datetime(2023, 1, 2), datetime(2023, 1, 2, 1))
    batches = historian_from_url(url).read(None, datetime(2023, 1, 2), datetime(2023, 1, 2, 1))
    assert code == 0
    assert sum(batch.num_rows for batch in batches) == expected.record_count
    assert f"{expected.record_count:,} readings written" in capsys.readouterr().out
