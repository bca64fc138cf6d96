"""The lake's other sources: topology, weather and the London (LCL) landing zone.

Topology and weather are written straight into the integrated zone (small, whole objects); a
London file is landed in the inbound bucket under ``uncompressed/london-lcl/`` where its S3 event
starts the same lake-ingest workflow as a HES file, so it is split, validated, quarantined,
deduplicated and accounted for in exactly the same way.
"""

from __future__ import annotations

import re
from datetime import datetime

import pyarrow as pa

from meterflow.core.errors import InvalidInput
from meterflow.hes import Fleet
from meterflow.lake.domain.london import LCL_HOUSEHOLDS_KEY, london_households
from meterflow.lake.domain.partitions import decode_parquet, encode_parquet
from meterflow.lake.domain.topology import build_topology, topology_object_keys
from meterflow.lake.domain.weather_source import weather_day_objects
from meterflow.lake.ports import LakeStore, WeatherProvider

LONDON_PREFIX = "uncompressed/london-lcl/"
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def publish_topology(fleet: Fleet, integrated: LakeStore) -> dict[str, int]:
    """Grid, substations, transformers and meters of the fleet under ``topology/``."""
    topology = build_topology(fleet)
    meters_key, assets_key = topology_object_keys()
    integrated.put(meters_key, encode_parquet(topology.meters))
    integrated.put(assets_key, encode_parquet(topology.assets))
    return {"meters": topology.meters.num_rows, "assets": topology.assets.num_rows}


def publish_weather(
    provider: WeatherProvider, start: datetime, end: datetime, integrated: LakeStore
) -> dict[str, int]:
    """Hourly observations for ``[start, end)`` under ``weather/date=YYYY-MM-DD/`` (days rewritten whole)."""
    table = provider.hourly(start, end)
    objects = weather_day_objects(table)
    for key, day_table in objects.items():
        existing = integrated.get(key)
        if existing is not None:
            # keep hours of the day outside this window (a partial day published earlier)
            old = decode_parquet(existing.data, day_table.schema)
            kept = old.filter(
                pa.compute.invert(
                    pa.compute.is_in(old["observation_time"], value_set=day_table["observation_time"])
                )
            )
            day_table = pa.concat_tables([kept, day_table]).sort_by("observation_time")
        integrated.put(key, encode_parquet(day_table))
    return {"days": len(objects), "hours": table.num_rows}


def land_london_file(
    name: str, data: bytes, inbound: LakeStore, integrated: LakeStore, arrive_time: datetime
) -> dict[str, str | int]:
    """Land a London LCL file for ingestion and publish its households' attributes."""
    if not _FILE_NAME.match(name):
        raise InvalidInput("file name must be 1-121 letters, digits, '.', '_' or '-'", field="name")
    households = london_households(data)
    existing = integrated.get(LCL_HOUSEHOLDS_KEY)
    if existing is not None:
        old = decode_parquet(existing.data, households.schema)
        old = old.filter(
            pa.compute.invert(pa.compute.is_in(old["meter_id"], value_set=households["meter_id"]))
        )
        households = pa.concat_tables([old, households]).sort_by("meter_id")
    integrated.put(LCL_HOUSEHOLDS_KEY, encode_parquet(households))
    stem = name.rsplit(".", 1)[0]
    file_id = re.sub(r"[^A-Za-z0-9_-]", "-", f"london-lcl-{stem}")[:80]
    key = f"{LONDON_PREFIX}{name}"
    inbound.put(
        key,
        data,
        metadata={
            "file-id": file_id,
            "file-format": "london_lcl",
            "reading-source": "london-lcl",
            "arrive-time": arrive_time.isoformat(),
        },
        content_type="text/csv",
    )
    return {"file_id": file_id, "key": key, "households": households.num_rows}
