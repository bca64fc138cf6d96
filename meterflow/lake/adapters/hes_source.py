"""The input adapter's view of a head-end system: its HTTP API and its SFTP server.

Requests are signed with SigV4 for ``execute-api`` (the deployed API uses IAM auth); a server
that does not check signatures (the local Chalice server) simply ignores the header. The SFTP
download authenticates with the key kept in Secrets Manager and accepts only the host key the
integration records: a server presenting any other key is refused.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import asyncssh
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from meterflow.core.errors import InvalidInput, RetryableError
from meterflow.lake.domain.integrations import Integration, WindowBy

_TIMEOUT_S = 30
_CHUNK_BYTES = 4 * 1024 * 1024


class HesHttpApi:
    def __init__(self, session: requests.Session, credentials: Any | None, region: str) -> None:
        self._http = session
        self._credentials = credentials
        self._region = region

    def _send(self, method: str, url: str, body: bytes | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._credentials is not None:
            signed = AWSRequest(method=method, url=url, data=body, headers=headers)
            SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(
                signed
            )
            headers = dict(signed.headers.items())
        try:
            response = self._http.request(method, url, data=body, headers=headers, timeout=_TIMEOUT_S)
        except requests.RequestException as exc:
            raise RetryableError(f"HES API unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableError(f"HES API answered {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise InvalidInput(
                f"HES API refused {method} {url}: {response.status_code} {response.text[:200]}"
            )
        return dict(response.json())

    def request_file(self, base_url: str, start_date: str, end_date: str, window_by: WindowBy) -> str:
        body = json.dumps({"start_date": start_date, "end_date": end_date, "window_by": window_by}).encode()
        answer = self._send("POST", f"{base_url.rstrip('/')}/readings/file", body)
        return str(answer["request_id"])

    def file_status(self, base_url: str, request_id: str) -> dict[str, Any]:
        query = urlencode({"request_id": request_id})
        return self._send("GET", f"{base_url.rstrip('/')}/readings/file?{query}")


class SecretsManagerSftpSource:
    """Streams a file from the HES SFTP server, host key pinned, client key from Secrets Manager."""

    def __init__(self, secretsmanager: Any) -> None:
        self._secrets = secretsmanager

    def download(self, integration: Integration, remote_path: str) -> Iterator[bytes]:
        private_key = asyncssh.import_private_key(
            self._secrets.get_secret_value(SecretId=integration.sftp_secret_name)["SecretString"]
        )
        host_key = asyncssh.import_public_key(integration.sftp_host_key)
        host_pattern = (
            integration.sftp_host
            if integration.sftp_port == 22
            else f"[{integration.sftp_host}]:{integration.sftp_port}"
        )
        known_hosts = asyncssh.import_known_hosts(
            f"{host_pattern} {host_key.export_public_key().decode().strip()}\n"
        )
        chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)

        async def fetch() -> None:
            async with (
                asyncssh.connect(
                    integration.sftp_host,
                    port=integration.sftp_port,
                    username=integration.sftp_user,
                    client_keys=[private_key],
                    known_hosts=known_hosts,
                ) as connection,
                connection.start_sftp_client() as sftp,
                sftp.open(remote_path, "rb") as remote,
            ):
                while chunk := await remote.read(_CHUNK_BYTES):
                    await asyncio.to_thread(chunks.put, chunk if isinstance(chunk, bytes) else chunk.encode())

        def run() -> None:
            try:
                asyncio.run(fetch())
            except BaseException as exc:  # handed to the consumer, which raises it
                chunks.put(exc)
            else:
                chunks.put(None)

        # The SFTP session runs in its own thread and event loop; bytes stream to the caller
        # through a small bounded queue, so a large file never sits in memory whole.
        worker = threading.Thread(target=run, name="sftp-download", daemon=True)
        worker.start()
        while True:
            item = chunks.get()
            if item is None:
                break
            if isinstance(item, asyncssh.HostKeyNotVerifiable):
                raise InvalidInput(f"SFTP host key of {integration.sftp_host} does not match: {item}")
            if isinstance(item, (asyncssh.SFTPNoSuchFile,)):
                raise InvalidInput(f"{remote_path} is not on the SFTP server: {item}")
            if isinstance(item, (OSError, asyncssh.Error)):
                raise RetryableError(f"SFTP download of {remote_path} failed: {item}")
            if isinstance(item, BaseException):
                raise item
            yield item
        worker.join()
