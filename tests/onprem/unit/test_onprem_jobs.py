"""Site jobs: ``historian.export`` streams the historian to the HES CSV and PUTs it once; ``noop``."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meterflow.hes.domain.export import encode_csv
from meterflow.hes.domain.fleet import Fleet
from meterflow.localcloud.historian_seed import seed_historian
from onprem_worker.historians import Historian, historian_from_url
from onprem_worker.jobs import (
    HistorianExport,
    HistorianNotConfigured,
    InvalidPayload,
    JobCancelled,
    JobContext,
    UploadFailed,
    handlers,
    noop,
)
from tests.support.upload_stub import SIGNED_QUERY, UploadStub

START = datetime(2023, 1, 3, 6, 0)
END = datetime(2023, 1, 3, 7, 0)  # 4 slots of the 500-meter test fleet, 495 readings each
# An export larger than the loopback socket buffers, so that its upload cannot finish unread.
LONG_END = START + timedelta(hours=40)


class RecordingContext:
    """A JobContext whose progress reports are kept, and which can cancel itself on the n-th report."""

    def __init__(self, cancel_at_report: int | None = None) -> None:
        self.cancelled = threading.Event()
        self.reports: list[tuple[int, float]] = []
        self.cancel_at_report = cancel_at_report

    def report(self, rows: int, fraction: float) -> None:
        self.reports.append((rows, fraction))
        if len(self.reports) == self.cancel_at_report:
            self.cancelled.set()

    def context(self) -> JobContext:
        return JobContext(cancelled=self.cancelled, report_progress=self.report)


@pytest.fixture(scope="module")
def historian_url(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('historian')}/historian.db"
    seed_historian(url, fleet, START - timedelta(hours=1), LONG_END)
    return url


@pytest.fixture
def historian(historian_url: str) -> Historian:
    return historian_from_url(historian_url, batch_rows=300)


@pytest.fixture
def stub() -> Iterator[UploadStub]:
    with UploadStub() as running:
        yield running


def payload(url: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "start": START.isoformat(),
        "end": END.isoformat(),
        "upload_url": url,
        "upload_headers": {"x-amz-meta-file-id": "historian-utility-a-job-1"},
    }
    return fields | overrides


def fleet_csv(fleet: Fleet, meter_ids: list[str] | None = None) -> bytes:
    window = fleet.window(START, END)
    lines = encode_csv(fleet.records(window, 0, window.record_count)).splitlines(keepends=True)
    if meter_ids is None:
        return b"".join(lines)
    return b"".join(line for line in lines if line.split(b",")[2].decode() in meter_ids)


def test_noop_answers_at_once() -> None:
    assert noop({}, RecordingContext().context()) == {}


def test_the_worker_serves_noop_and_historian_export() -> None:
    assert set(handlers(None)) == {"noop", "historian.export"}


def test_an_export_uploads_exactly_the_simulators_csv_in_one_put(
    historian: Historian, stub: UploadStub, fleet: Fleet
) -> None:
    # GIVEN a historian seeded with the fleet WHEN a window is exported
    output = HistorianExport(historian)(payload(stub.url()), RecordingContext().context())
    # THEN one PUT carried the same bytes as the cloud's own HES encoder, with the presigned headers
    expected = fleet_csv(fleet)
    assert [upload.body for upload in stub.uploads] == [expected]
    upload = stub.uploads[0]
    assert upload.path == f"/bucket/exports/readings.csv?{SIGNED_QUERY}"
    assert upload.headers["x-amz-meta-file-id"] == "historian-utility-a-job-1"
    assert upload.headers["Content-Length"] == str(len(expected))
    assert "Transfer-Encoding" not in upload.headers  # S3 refuses chunked presigned PUTs
    # AND the output describes the file
    assert output == {
        "rows": 4 * 495,
        "bytes": len(expected),
        "sha256": hashlib.sha256(expected).hexdigest(),
        "first_time": "2023-01-03 06:00:00.000000",
        "last_time": "2023-01-03 06:45:00.000000",
    }


def test_progress_counts_rows_and_the_time_covered(historian: Historian, stub: UploadStub) -> None:
    # GIVEN batches of 300 rows WHEN a window of 1,980 rows is exported
    recorder = RecordingContext()
    HistorianExport(historian)(payload(stub.url()), recorder.context())
    # THEN progress rises batch by batch and ends at every row, fully done
    rows = [report[0] for report in recorder.reports]
    fractions = [report[1] for report in recorder.reports]
    assert rows == sorted(rows)
    assert fractions == sorted(fractions)
    assert rows[0] == 300
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert recorder.reports[-1] == (1980, 1.0)
    # the first batch is all of the first slot; the last slot starts 45 minutes into the hour
    assert fractions[0] == 0.0
    assert 0.75 == fractions[-2] < fractions[-1]


def test_an_export_of_some_meters_holds_only_theirs(
    historian: Historian, stub: UploadStub, fleet: Fleet
) -> None:
    meters = fleet.device_id_list[10:13]
    output = HistorianExport(historian)(payload(stub.url(), meter_ids=meters), RecordingContext().context())
    assert stub.uploads[0].body == fleet_csv(fleet, meters)
    assert output["rows"] == stub.uploads[0].body.count(b"\n") > 0


def test_an_empty_window_uploads_an_empty_file(historian: Historian, stub: UploadStub) -> None:
    empty = payload(stub.url(), start="2024-01-01T00:00:00", end="2024-01-02T00:00:00")
    output = HistorianExport(historian)(empty, RecordingContext().context())
    assert [upload.body for upload in stub.uploads] == [b""]
    assert output["rows"] == output["bytes"] == 0
    assert output["first_time"] is output["last_time"] is None


def test_a_cancel_between_batches_stops_the_export_before_any_upload(
    historian: Historian, stub: UploadStub
) -> None:
    # GIVEN a cancel that arrives after the second batch WHEN exporting THEN the job stops, nothing is sent
    recorder = RecordingContext(cancel_at_report=2)
    with pytest.raises(JobCancelled):
        HistorianExport(historian)(payload(stub.url()), recorder.context())
    assert len(recorder.reports) == 2
    assert stub.uploads == []
    assert not stub.started.is_set()


def test_a_cancel_during_the_upload_stops_it(historian_url: str) -> None:
    # GIVEN a 10 MB upload that the server reads slowly WHEN the job is cancelled once the PUT started
    recorder = RecordingContext()
    with UploadStub(read_delay=0.01) as slow:

        def cancel_once_started() -> None:
            if slow.started.wait(30):
                recorder.cancelled.set()

        threading.Thread(target=cancel_once_started, daemon=True).start()
        # THEN the upload stops midway and the job reports the cancel
        with pytest.raises(JobCancelled):
            HistorianExport(historian_from_url(historian_url))(
                payload(slow.url(), end=LONG_END.isoformat()), recorder.context()
            )
        assert slow.aborted.wait(10)
        assert slow.uploads == []


def test_an_upload_refused_by_the_server_fails_the_job_without_leaking_the_signature(
    historian: Historian,
) -> None:
    # GIVEN a presigned URL that has expired (S3 answers 403)
    with UploadStub(status=403) as refusing, pytest.raises(UploadFailed) as failure:
        HistorianExport(historian)(payload(refusing.url()), RecordingContext().context())
    # THEN the job fails with the status and S3's answer, and the signature stays out of the message
    assert "HTTP 403" in str(failure.value)
    assert "AccessDenied" in str(failure.value)
    assert SIGNED_QUERY not in str(failure.value)


def test_an_unreachable_upload_endpoint_fails_the_job(historian: Historian, stub: UploadStub) -> None:
    url = stub.url()
    stub.__exit__(None, None, None)  # nothing listens there any more
    with pytest.raises(UploadFailed, match="ConnectionError") as failure:
        HistorianExport(historian)(payload(url), RecordingContext().context())
    assert SIGNED_QUERY not in str(failure.value)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"end": START.isoformat()}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"upload_url": None}, "upload_url"),
        ({"bucket": "mine"}, "bucket"),
    ],
)
def test_a_malformed_payload_fails_with_the_field_named(
    historian: Historian, fields: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidPayload, match=where):
        HistorianExport(historian)(payload("http://127.0.0.1:9/x", **fields), RecordingContext().context())


def test_an_export_on_a_worker_without_historian_fails_clearly(stub: UploadStub) -> None:
    with pytest.raises(HistorianNotConfigured, match="MF_HISTORIAN_URL"):
        HistorianExport(None)(payload(stub.url()), RecordingContext().context())


def test_the_spool_file_is_removed_whatever_the_outcome(historian: Historian, tmp_path: Path) -> None:
    # GIVEN a spool directory WHEN an export fails at upload THEN nothing is left in it
    with UploadStub(status=500) as failing, pytest.raises(UploadFailed):
        HistorianExport(historian, spool_directory=tmp_path)(
            payload(failing.url()), RecordingContext().context()
        )
    assert list(tmp_path.iterdir()) == []
