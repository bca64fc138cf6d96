"""A client of the HES as seed 000 documents it: HTTP API, Secrets Manager, SFTP download.

Used by the demo, the end-to-end tests and the benchmarks, so all three drive the stack the way a
utility's integration would.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import requests


@dataclass
class ExportOutcome:
    request_id: str
    status: dict[str, Any]
    statuses_seen: list[str] = field(default_factory=list)
    seconds: float = 0.0


class HesClient:
    def __init__(self, api_url: str, session: requests.Session | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = session or requests.Session()

    def readings(self, **params: Any) -> requests.Response:
        return self.http.get(f"{self.api_url}/readings", params=params, timeout=30)

    def request_file(self, start_date: str, end_date: str, window_by: str | None = None) -> requests.Response:
        body = {"start_date": start_date, "end_date": end_date}
        if window_by is not None:  # left out, the body is the seed's own
            body["window_by"] = window_by
        return self.http.post(f"{self.api_url}/readings/file", json=body, timeout=30)

    def file_status(self, request_id: str) -> requests.Response:
        return self.http.get(f"{self.api_url}/readings/file", params={"request_id": request_id}, timeout=30)

    def wait_for_file(self, request_id: str, timeout_s: float = 600, poll_s: float = 0.2) -> ExportOutcome:
        """Poll ``GET /readings/file`` until the request is completed or failed."""
        started = time.monotonic()
        outcome = ExportOutcome(request_id, {})
        while time.monotonic() - started < timeout_s:
            response = self.file_status(request_id)
            response.raise_for_status()
            outcome.status = response.json()
            status = outcome.status["status"]
            if not outcome.statuses_seen or outcome.statuses_seen[-1] != status:
                outcome.statuses_seen.append(status)
            if status in {"completed", "failed"}:
                outcome.seconds = time.monotonic() - started
                return outcome
            time.sleep(poll_s)
        raise TimeoutError(
            f"file request {request_id} still {outcome.status.get('status')} after {timeout_s} s"
        )


def save_private_key(secretsmanager: Any, secret_name: str, path: Path) -> Path:
    """``aws secretsmanager get-secret-value ... > private.pem; chmod 400 private.pem``."""
    secret = secretsmanager.get_secret_value(SecretId=secret_name)["SecretString"]
    if path.exists():
        path.chmod(0o600)
    path.write_text(secret)
    path.chmod(0o400)
    return path


def sftp_get(
    host: str,
    port: int,
    username: str,
    private_key: Path,
    known_hosts: Path,
    remote_path: str,
    local_path: Path,
) -> Path:
    """``sftp -i private.pem -P port user@host`` then ``get remote_path``, host key verified."""

    async def download() -> None:
        async with (
            asyncssh.connect(
                host,
                port=port,
                username=username,
                client_keys=[str(private_key)],
                known_hosts=str(known_hosts),
            ) as connection,
            connection.start_sftp_client() as sftp,
        ):
            await sftp.get(remote_path, str(local_path))

    local_path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(download())
    return local_path


def count_gzip_lines(path: Path) -> int:
    lines = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines
